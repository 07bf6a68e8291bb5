"""The network under node processes: QUIC on loopback (aioquic driven by trio), identity proofs,
a driver for sans-I/O cores, a UDP fault proxy, control endpoints, process supervision, metrics.

Read in this order: ``tls`` (certificates and pins), ``auth`` (which node is at each end),
``framing`` (messages on a stream), ``endpoint`` (connections over one UDP socket),
``driver`` (a sans-I/O core over an endpoint), ``proxy`` (faults between nodes), ``control``
(the loopback request/answer protocol), ``node_host`` (one node process), ``process``
(starting, crashing, restarting and reaping node processes), ``metrics``; then the node core
as a process: ``mesh_node`` (``mbt node``) and ``cluster`` (``Cluster``, ``mbt cluster``).
"""
