NAME = "callbacks"

async def run(ctx):
    raise NotImplementedError
