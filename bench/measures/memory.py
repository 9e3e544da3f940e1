NAME = "memory"

async def run(ctx):
    raise NotImplementedError
