"""A Kubernetes "node" on one machine, for attribution tests: pods are network namespaces with their own IP on a
bridge (inside a node namespace the fixture owns), their processes run in cgroups laid out as the kubelet (systemd
driver) and containerd lay them out, and a local HTTP server answers the Kubernetes API's list and watch requests
for those pods, services, EndpointSlices, namespaces and nodes with Kubernetes JSON."""
import base64
import copy
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

RESOURCES = {
    "/api/v1/pods": ("pods", "PodList"),
    "/api/v1/services": ("services", "ServiceList"),
    "/apis/discovery.k8s.io/v1/endpointslices": ("endpointslices", "EndpointSliceList"),
    "/api/v1/namespaces": ("namespaces", "NamespaceList"),
    "/api/v1/nodes": ("nodes", "NodeList"),
}


def rfc3339(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class FakeKubeAPI:
    """List and watch over an event log. `pin_lists()` makes later changes reach clients only through watches;
    `expire_history()` makes watches from older versions answer 410 Gone, as a compacted etcd does."""

    def __init__(self, tls_dir=None):
        """With `tls_dir`, serves HTTPS with a fresh CA and a server certificate for 127.0.0.1 made there."""
        self.lock = threading.Condition()
        self.version = 100
        self.events = []  # (version, resource, type, object)
        self.objects = {name: {} for name, _ in RESOURCES.values()}
        self.pinned = None
        self.pin_once = False
        self.pin_used = set()
        self.oldest_watchable = 0
        self.requests = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.ca_pem = None
        if tls_dir:
            import ssl
            self.ca_pem = make_certificates(tls_dir)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(f"{tls_dir}/server.crt", f"{tls_dir}/server.key")
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        scheme = "https" if self.ca_pem else "http"
        return f"{scheme}://127.0.0.1:{self.server.server_address[1]}"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def kubeconfig(self, path, ca_pem=None):
        """A kubeconfig (YAML, as kubectl writes them) pointing at this server with a token (and its CA)."""
        ca = ca_pem or self.ca_pem
        ca_line = f"\n    certificate-authority-data: {base64.b64encode(ca).decode()}" if ca else ""
        with open(path, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
clusters:
- cluster:
    server: {self.url}{ca_line}
  name: fake
contexts:
- context:
    cluster: fake
    user: tester
  name: fake
current-context: fake
users:
- name: tester
  user:
    token: test-token  # checked by the server
""")
        return path

    # Mutations ---------------------------------------------------------------------------------------------------

    def put(self, resource, obj):
        with self.lock:
            self.version += 1
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self.version)
            key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            kind = "MODIFIED" if key in self.objects[resource] else "ADDED"
            self.objects[resource][key] = obj
            self.events.append((self.version, resource, kind, obj))
            self.lock.notify_all()

    def delete(self, resource, namespace, name):
        with self.lock:
            obj = self.objects[resource].pop((namespace, name))
            self.version += 1
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self.version)
            self.events.append((self.version, resource, "DELETED", obj))
            self.lock.notify_all()

    def load(self, resource, objects):
        """Adds `objects` as state that predates every watch (no events): a large cluster in one step."""
        with self.lock:
            for obj in objects:
                self.version += 1
                obj["metadata"]["resourceVersion"] = str(self.version)
                self.objects[resource][(obj["metadata"].get("namespace", ""), obj["metadata"]["name"])] = obj

    def pin_lists(self, once=False):
        """Lists answer the current state as of now; with `once`, only each resource's first list does."""
        with self.lock:
            self.pinned = (self.version, copy.deepcopy(self.objects))
            self.pin_once = once
            self.pin_used = set()

    def unpin_lists(self):
        with self.lock:
            self.pinned = None

    def expire_history(self):
        with self.lock:
            self.oldest_watchable = self.version + 1

    # HTTP --------------------------------------------------------------------------------------------------------

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                api.requests.append((url.path, query, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != "Bearer test-token":
                    return self.reply(401, {"kind": "Status", "code": 401, "reason": "Unauthorized"})
                if url.path not in RESOURCES:
                    return self.reply(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
                resource, list_kind = RESOURCES[url.path]
                if query.get("watch") in ("1", "true"):
                    return self.watch(resource, int(query.get("resourceVersion", "0")), float(query.get("timeoutSeconds", "5")))
                return self.list(resource, list_kind, int(query.get("limit", "0") or 0), int(query.get("continue", "0") or 0))

            def reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def list(self, resource, list_kind, limit, offset):
                with api.lock:
                    pinned = api.pinned if not (api.pin_once and resource in api.pin_used) else None
                    if offset == 0:
                        api.pin_used.add(resource)
                    version, objects = pinned or (api.version, api.objects)
                    items = [objects[resource][k] for k in sorted(objects[resource])]
                page = items[offset:offset + limit] if limit else items[offset:]
                more = limit and offset + limit < len(items)
                self.reply(200, {"kind": list_kind, "apiVersion": "v1",
                                 "metadata": {"resourceVersion": str(version), "continue": str(offset + limit) if more else ""},
                                 "items": page})

            def chunk(self, obj):
                data = json.dumps(obj).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            def watch(self, resource, since, timeout):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                deadline = time.monotonic() + min(timeout, 5)
                try:
                    with api.lock:
                        if since < api.oldest_watchable - 1:
                            self.chunk({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                                                     "message": "too old resource version", "reason": "Expired", "code": 410}})
                        else:
                            sent = since
                            while time.monotonic() < deadline:
                                for version, res, kind, obj in api.events:
                                    if version > sent and res == resource:
                                        self.chunk({"type": kind, "object": obj})
                                if api.events:
                                    sent = max(sent, api.events[-1][0])
                                api.lock.wait(max(0.0, min(0.5, deadline - time.monotonic())))
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler


def make_certificates(directory):
    """A CA and a server certificate for IP 127.0.0.1 signed by it (openssl); returns the CA's PEM bytes."""
    d = directory
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=fake-kube-ca",
        "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.crt")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kube-apiserver", "-keyout", f"{d}/server.key",
        "-out", f"{d}/server.csr")
    with open(f"{d}/san.ext", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:kubernetes.default.svc\n")
    run("openssl", "x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.crt", "-CAkey", f"{d}/ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", f"{d}/san.ext", "-out", f"{d}/server.crt")
    with open(f"{d}/ca.crt", "rb") as f:
        return f.read()


def pod_object(namespace, name, uid, ip, node, labels, containers, created):
    """A Pod as the API server returns it (running, containerd runtime)."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": uid, "labels": labels,
                     "creationTimestamp": rfc3339(created),
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name.rsplit("-", 1)[0],
                                          "uid": str(uuid.uuid4()), "controller": True}]},
        "spec": {"nodeName": node, "containers": [{"name": c, "image": "python:3.11"} for c, _ in containers],
                 "restartPolicy": "Always", "serviceAccountName": "default"},
        "status": {"phase": "Running", "hostIP": "192.168.213.1", "podIP": ip, "podIPs": [{"ip": ip}],
                   "qosClass": "Burstable", "startTime": rfc3339(created),
                   "containerStatuses": [{"name": c, "ready": True, "restartCount": 0, "image": "python:3.11",
                                          "containerID": f"containerd://{cid}", "started": True,
                                          "state": {"running": {"startedAt": rfc3339(created)}}} for c, cid in containers]},
    }


def service_object(namespace, name, cluster_ip, selector):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()), "creationTimestamp": rfc3339(time.time() - 3600)},
            "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "selector": selector,
                     "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}


def slice_object(namespace, service, pods):
    """The EndpointSlice of `service`: pods are (name, ip, node)."""
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"{service}-x7k2p", "namespace": namespace, "uid": str(uuid.uuid4()),
                         "labels": {"kubernetes.io/service-name": service, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "nodeName": node,
                           "targetRef": {"kind": "Pod", "namespace": namespace, "name": name, "uid": str(uuid.uuid4())}}
                          for name, ip, node in pods],
            "ports": [{"name": "", "port": 8080, "protocol": "TCP"}]}


def run(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


class Pod:
    def __init__(self, namespace, name, ip, container="app"):
        self.namespace, self.name, self.ip, self.container = namespace, name, ip, container
        self.uid = str(uuid.uuid4())
        self.container_id = uuid.uuid4().hex + uuid.uuid4().hex
        self.netns = None
        self.cgroup = None
        self.cgroup_id = None
        self.process = None


class LocalCluster:
    """A node network namespace holding a bridge; each pod a namespace with a veth on it, a cgroup and a process."""

    def __init__(self, cgroup_mount, subnet="10.244.213", api=None):
        """With `api`, the pods are published in that FakeKubeAPI (started by the caller) instead of a new one."""
        self.tag = uuid.uuid4().hex[:6]
        self.node_ns = f"fkn{self.tag}"
        self.subnet = subnet
        self.mount = cgroup_mount
        self.created_dirs = []
        self.pods = []
        self.api = api or FakeKubeAPI().start()
        self.node = "fathom-test-node"
        run("ip", "netns", "add", self.node_ns)
        run("ip", "-n", self.node_ns, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", self.node_ns, "link", "set", "br0", "up")
        run("ip", "-n", self.node_ns, "link", "set", "lo", "up")
        self.api.put("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.node, "labels": {"kubernetes.io/hostname": self.node},
                                                                        "creationTimestamp": rfc3339(time.time() - 86400)},
                               "status": {"addresses": [{"type": "InternalIP", "address": "192.168.213.1"}, {"type": "Hostname", "address": self.node}]}})

    def _mkdir(self, path):
        if not os.path.isdir(path):
            os.mkdir(path)
            self.created_dirs.append(path)

    def start_pod(self, pod, command=None):
        """Network namespace + veth on the bridge + kubelet/containerd cgroups + a process inside both."""
        index = len(self.pods)
        pod.netns = f"fkp{self.tag}{index}"
        host_if, pod_if = f"fkh{self.tag}{index}", f"fkc{self.tag}{index}"
        run("ip", "netns", "add", pod.netns)
        run("ip", "-n", self.node_ns, "link", "add", host_if, "type", "veth", "peer", "name", pod_if, "netns", pod.netns)
        run("ip", "-n", self.node_ns, "link", "set", host_if, "master", "br0", "up")
        run("ip", "-n", pod.netns, "addr", "add", f"{pod.ip}/24", "dev", pod_if)
        run("ip", "-n", pod.netns, "link", "set", pod_if, "up")
        run("ip", "-n", pod.netns, "link", "set", "lo", "up")
        uid = pod.uid.replace("-", "_")
        parts = ["kubepods.slice", "kubepods-burstable.slice", f"kubepods-burstable-pod{uid}.slice",
                 f"cri-containerd-{pod.container_id}.scope"]
        path = self.mount
        for part in parts:
            path = os.path.join(path, part)
            self._mkdir(path)
        pod.cgroup = path
        pod.cgroup_id = os.stat(path).st_ino
        cmd = command or [sys.executable, "-m", "http.server", "--bind", pod.ip, "8080"]
        # Into the cgroup first: `ip netns exec` remounts /sys, hiding the cgroup v2 mount of hybrid hosts.
        pod.process = subprocess.Popen(
            ["sh", "-c", f'echo $$ > {path}/cgroup.procs && exec "$@"', "sh", "ip", "netns", "exec", pod.netns, *cmd],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pods.append(pod)
        return pod

    def publish_pod(self, pod, labels, created=None):
        self.api.put("pods", pod_object(pod.namespace, pod.name, pod.uid, pod.ip, self.node, labels,
                                        [(pod.container, pod.container_id)], created or time.time()))

    def stop_pod(self, pod):
        if pod.process and pod.process.poll() is None:
            pod.process.kill()
            pod.process.wait()
        if pod.netns:
            run("ip", "netns", "del", pod.netns, check=False)
            pod.netns = None
        self._remove_cgroups(lambda d: pod.container_id in d or pod.uid.replace("-", "_") in d)

    def _remove_cgroups(self, which):
        for path in sorted((d for d in self.created_dirs if which(d)), key=len, reverse=True):
            for _ in range(50):
                try:
                    os.rmdir(path)
                    self.created_dirs.remove(path)
                    break
                except FileNotFoundError:
                    self.created_dirs.remove(path)
                    break
                except OSError:
                    time.sleep(0.1)

    def destroy(self):
        for pod in list(self.pods):
            self.stop_pod(pod)
        self._remove_cgroups(lambda d: True)
        run("ip", "netns", "del", self.node_ns, check=False)
        self.api.stop()
