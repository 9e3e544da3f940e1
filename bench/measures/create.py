NAME = "create"

async def run(ctx):
    raise NotImplementedError
