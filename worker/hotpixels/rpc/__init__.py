"""The long-lived worker: newline-delimited JSON-RPC 2.0 over stdio or a loopback socket pair.

Read in this order (the wire protocol itself is ``docs/protocol.md``):

* :mod:`.framing` — one message per line, size limit, strict depth-limited JSON, the thread-safe writer;
* :mod:`.transports` — stdio (with stdout protected from stray prints) and Lightroom's LrSocket pair;
* :mod:`.envelope` — what is a request, a notification, a batch (JSON-RPC 2.0's rules);
* :mod:`.server` — reader thread, batches, the ``quick`` and ``job`` lanes, ``$/progress`` ticks, cancel, stop;
* :mod:`.methods` — the registry and one module per method family (``worker``, ``image``, ``profiles``),
  each method with its parameter table;
* :mod:`.params`, :mod:`.errors` — parameter kinds and checks, and the mapping of failures to JSON-RPC errors;
* :mod:`.state` — what stays warm: profile libraries, the byte-bounded profile cache, the model;
* :mod:`.cli` (``hotpixels-worker``), :mod:`.selftest` (``--self-test``), :mod:`.bundle` (frozen
  layout), :mod:`.client` (a Python client for tests, benchmarks and other hosts).
"""
