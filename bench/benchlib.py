"""What the benchmark scripts share: a process's CPU time, an agent's metrics, a median."""
import os
import statistics
import urllib.request


def cpu_seconds(pid):
    """User + system CPU seconds the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metrics(port):
    """The agent's /metrics on 127.0.0.1:port, each family summed over its labels."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            name = key.split("{")[0]
            values[name] = values.get(name, 0) + float(value)
    return values


def median(values):
    return statistics.median(list(values))
