"""Load benchmarks for chatroom (issue #7): a protocol-speaking load generator, a
baseline Tornado broadcast server, scenarios, and a CI smoke check.

Run ``python -m benchmarks.run --help``; see docs/performance.md.
"""
