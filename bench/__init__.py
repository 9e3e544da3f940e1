"""The benchmark (`make bench`, `python -m bench`): issue 11's measures against the test kit's
fakes, each figure printed beside its goal. Test-side like testkit/: never imported by the product.

Layout: cli.py (options, repeats, medians, output), report.py (figures and goals), procs.py (the
child processes and their CPU/RSS), control.py (the fakes' control APIs), world.py (one run's
fakes + database + bot), seed.py (rows written before the bot runs), echo_bot.py (the bare
aiogram baseline), measures/ (one module per measure).
"""
