"""The long-lived worker: newline-delimited JSON-RPC 2.0 over stdio or a loopback socket pair."""
