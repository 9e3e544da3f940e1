"""The composition root: `kiebot.app` assembles settings, engine, clients, services, the
dispatcher and the server; `kiebot.cli` is the `kiebot` command. It sits above every other
package of the product and nothing of the product imports it."""
