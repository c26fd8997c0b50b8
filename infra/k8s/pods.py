"""A Deployment or StatefulSet of infra/k8s as `docker run` runs it: what the manifest
says of the container — image, command, environment, ports, user, read-only root,
capabilities, scratch and ConfigMap volumes, limits and probes — read from the
manifest, not copied by hand.

What a cluster would provide is given by the caller: the ConfigMap's and Secrets'
values, the pod's name, and where the cluster's DNS names (`nats-0.nats-cluster`,
`tickets-mongo-0.tickets-mongo-srv`, `auth-srv`) lead.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from k8s.manifest_nats import ROOT

K8S = ROOT / "infra" / "k8s"
REFERENCE = re.compile(r"\$\(([A-Z0-9_]+)\)")  # $(VAR): an earlier variable, as Kubernetes


def workload(name: str) -> dict[str, Any]:
    """The Deployment or StatefulSet named `name` in `<name>-depl.yaml` (a service's
    file also holds its database's StatefulSet)."""
    [doc] = [
        doc
        for doc in yaml.safe_load_all((K8S / f"{name}-depl.yaml").read_text())
        if doc
        and doc["kind"] in ("Deployment", "StatefulSet")
        and doc["metadata"]["name"] in (name, f"{name}-depl")
    ]
    return doc


def config_map(name: str = "ticketing-config", manifest: str = "config.yaml") -> dict[str, str]:
    [doc] = [
        doc
        for doc in yaml.safe_load_all((K8S / manifest).read_text())
        if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == name
    ]
    return dict(doc["data"])


def docker(*args: str, check: bool = True, both: bool = False) -> str:
    """Run the docker client; its output (stripped), or an error with docker's message."""
    done = _docker_run(*args)
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return (done.stdout + done.stderr if both else done.stdout).strip()


def _docker_run(*args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("docker")
    if executable is None:
        raise RuntimeError("no docker client on PATH: a Docker engine is needed")
    return subprocess.run([executable, *args], capture_output=True, text=True)


@dataclass
class Cluster:
    """What the pods of one test read from their surroundings."""

    network: str
    config: dict[str, dict[str, str]]  # ConfigMap name -> data
    secrets: dict[str, dict[str, str]]  # Secret name -> data
    hosts: dict[str, str]  # a cluster DNS name -> the address it stands for here


@dataclass
class Pod:
    name: str
    container: dict[str, Any]
    spec: dict[str, Any]
    container_id: str = ""
    port: int = 0  # the container port published on the host's loopback

    @classmethod
    def of(cls, service: str, container: str | None = None) -> Pod:
        spec = workload(service)["spec"]["template"]["spec"]
        [found] = [c for c in spec["containers"] if c["name"] == (container or service)]
        return cls(name=f"{service}-depl-test", container=found, spec=spec)

    @property
    def container_port(self) -> int:
        """The one port the container listens on (the manifests name one each)."""
        [port] = [p["containerPort"] for p in self.container["ports"]]
        return port

    def env(self, cluster: Cluster) -> dict[str, str]:
        """The container's variables in order, each `$(VAR)` replaced by an earlier one."""
        values: dict[str, str] = {}
        for var in self.container.get("env", []):
            if "value" in var:
                value = REFERENCE.sub(lambda m: values.get(m[1], m[0]), var["value"])
            else:
                value = self._value_from(var["valueFrom"], cluster)
                if value is None:
                    continue  # an optional key the ConfigMap does not set
            values[var["name"]] = value
        return values

    def _value_from(self, source: dict[str, Any], cluster: Cluster) -> str | None:
        if "fieldRef" in source:
            assert source["fieldRef"]["fieldPath"] == "metadata.name"
            return self.name
        kind, store = (
            ("secretKeyRef", cluster.secrets)
            if "secretKeyRef" in source
            else ("configMapKeyRef", cluster.config)
        )
        ref = source[kind]
        value = store.get(ref["name"], {}).get(ref["key"])
        if value is None and not ref.get("optional"):
            raise KeyError(f"{self.name}: {ref['name']} has no key {ref['key']}")
        return value

    def run_args(self, image: str, cluster: Cluster, aliases: tuple[str, ...] = ()) -> list[str]:
        security = self.container.get("securityContext", {})
        pod_security = self.spec.get("securityContext", {})
        volumes = {v["name"]: v for v in self.spec.get("volumes", [])}
        args = ["--name", f"{cluster.network}-{self.name}", "--network", cluster.network]
        args += [arg for alias in aliases for arg in ("--network-alias", alias)]
        args += [f"--add-host={name}:{address}" for name, address in cluster.hosts.items()]
        user = security.get("runAsUser", pod_security.get("runAsUser"))
        group = security.get("runAsGroup", pod_security.get("runAsGroup"))
        if user is not None:
            args += ["--user", f"{user}:{group}" if group is not None else str(user)]
        if security.get("readOnlyRootFilesystem"):
            args.append("--read-only")
        for mount in self.container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            if "configMap" in volume:  # its keys as files, read-only
                files = _files(cluster.config[volume["configMap"]["name"]])
                args += ["--volume", f"{files}:{mount['mountPath']}:ro"]
            else:
                assert "emptyDir" in volume, "only scratch and ConfigMap volumes are run here"
                args += ["--tmpfs", mount["mountPath"]]
        args += [arg for cap in security["capabilities"]["drop"] for arg in ("--cap-drop", cap)]
        if security.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        limits = self.container.get("resources", {}).get("limits", {})
        if "memory" in limits:
            args += ["--memory", _bytes(limits["memory"])]
        if "cpu" in limits:
            args += ["--cpus", _cpus(limits["cpu"])]
        args += ["--publish", f"127.0.0.1::{self.container_port}"]
        env = self.env(cluster)
        for name, value in env.items():
            args += ["--env", f"{name}={value}"]
        command = [  # Kubernetes replaces $(VAR) in a command with the container's VAR
            REFERENCE.sub(lambda m: env.get(m[1], m[0]), part)
            for part in self.container.get("command", [])
        ]
        if command:
            args += ["--entrypoint", command[0]]
        return [*args, image, *command[1:]]

    def start(self, image: str, cluster: Cluster, aliases: tuple[str, ...] = ()) -> Pod:
        self.container_id = docker("run", "--detach", *self.run_args(image, cluster, aliases))
        published = json.loads(docker("inspect", self.container_id))[0]["NetworkSettings"]
        self.port = int(published["Ports"][f"{self.container_port}/tcp"][0]["HostPort"])
        return self

    def address(self, network: str) -> str:
        """The container's address on a Docker network."""
        networks = json.loads(docker("inspect", self.container_id))[0]["NetworkSettings"]
        return str(networks["Networks"][network]["IPAddress"])

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def probe_ok(self, probe: str) -> bool:
        """The manifest's probe (`livenessProbe`, `readinessProbe`) passes: its httpGet
        answers 200, its tcpSocket accepts, or its exec command exits 0 in the container."""
        check = self.container[probe]
        if "exec" in check:
            return _docker_run("exec", self.container_id, *check["exec"]["command"]).returncode == 0
        [kind] = [kind for kind in ("httpGet", "tcpSocket") if kind in check]
        assert check[kind]["port"] == self.container_port, "probes are on the published port"
        try:
            if kind == "tcpSocket":
                socket.create_connection(("127.0.0.1", self.port), timeout=3).close()
                return True
            return httpx.get(self.url(check[kind]["path"]), timeout=3).status_code == 200
        except (OSError, httpx.HTTPError):
            return False

    def wait_ready(self, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.probe_ok("readinessProbe"):
                return
            state = json.loads(docker("inspect", self.container_id))[0]["State"]
            if not state["Running"]:
                break
            time.sleep(0.5)
        raise AssertionError(f"{self.name} is not ready:\n{self.logs()[-4000:]}")

    def logs(self) -> str:
        return docker("logs", self.container_id, check=False, both=True)

    def remove(self) -> None:
        if self.container_id:
            docker("rm", "--force", self.container_id, check=False)


def until(condition: Callable[[], bool], within: float) -> None:
    """Return once `condition()` is true; fail if it never is within `within` s (a bound
    for a stuck test, never the assertion: a condition that holds returns at once)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not so within {within} s: {condition.__qualname__}")
        time.sleep(0.3)


def _files(data: dict[str, str]) -> str:
    """A ConfigMap's keys as files in a directory of their own (readable by any user, as
    a ConfigMap volume is)."""
    folder = Path(tempfile.mkdtemp(prefix="configmap-"))
    for key, text in data.items():
        (folder / key).write_text(text)
        (folder / key).chmod(0o644)
    folder.chmod(0o755)
    return str(folder)


def _bytes(quantity: str) -> str:
    """A Kubernetes memory quantity (Mi, Gi) as docker's (m, g: the same binary units)."""
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return f"{number}{unit[0].lower()}"


def _cpus(quantity: str) -> str:
    """A Kubernetes CPU quantity ("500m", "1") in cores."""
    return str(int(quantity[:-1]) / 1000) if quantity.endswith("m") else quantity
