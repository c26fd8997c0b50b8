"""The server harness on real processes: what a test relies on when it starts one."""

import socket

from harness import servers
from harness.servers import LOOPBACK, NatsCluster


def test_a_cluster_whose_port_was_taken_starts_again_on_fresh_ports(tmp_path, monkeypatch):
    """nats-server says it is ready for clients before it binds its cluster port, and
    exits if that port is taken: the node looked started and was dead (a CI run's
    flaky cluster test). Now the cluster notices and starts over."""
    taken = socket.socket()
    taken.bind((LOOPBACK, 0))
    taken.listen()
    first_ports = iter([taken.getsockname()[1]])
    free_port = servers.free_port
    monkeypatch.setattr(servers, "free_port", lambda: next(first_ports, None) or free_port())
    cluster = NatsCluster(tmp_path, 3)
    try:
        assert cluster.nodes[0].cluster_port == taken.getsockname()[1]
        cluster.start()
        assert all(node.running for node in cluster.nodes)
        assert taken.getsockname()[1] not in {node.cluster_port for node in cluster.nodes}
        assert (tmp_path / "attempt2").is_dir()
    finally:
        cluster.stop()
        taken.close()
