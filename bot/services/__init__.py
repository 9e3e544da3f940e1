"""Services: the business operations handlers and the server call (generation, accounts).

Import the modules directly (bot.services.generation, bot.services.accounts); this package
imports nothing itself so loading one service never drags in the other's dependencies.
"""
