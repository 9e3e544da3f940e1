NAME = "delivery"

async def run(ctx):
    raise NotImplementedError
