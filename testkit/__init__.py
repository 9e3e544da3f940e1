"""Everything that imitates the outside world, for the tests and the demo.

- `testkit.telegram` — the fake Bot API (`python -m testkit.telegram`)
- `testkit.kie` — the KIE.ai emulator (`python -m testkit.kie`)
- `testkit.supabase` — a fake Supabase Storage
- `testkit.stack` — `LocalStack`: the real app wired to the fakes on loopback
- `testkit.scripted` — a scripted user: wait for a text, tap a button when it shows
- `testkit.demo` — `python -m testkit.demo` (`make demo`)
- `testkit.presenter` — `PlainPresenter`, English texts without buttons
- `testkit.mocked_bot` — `MockedBot`/`MockedSession` and update builders, for feeding the real
  dispatcher in-process (the unit tier)

The product packages (`bot`, `handlers`, `kie_client`, `storage`, `migrations`, `kiebot`) never
import from here; tests/unit/test_layers.py fails if one does.
"""
