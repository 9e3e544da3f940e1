NAME = "polling"

async def run(ctx):
    raise NotImplementedError
