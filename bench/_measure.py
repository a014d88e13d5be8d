"""Run one command and print its wall time (s) and peak RSS (MiB) as JSON. Used by cli_startup.py."""
import json
import resource
import subprocess
import sys
import time

started = time.perf_counter()
proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
wall = time.perf_counter() - started
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"wall": wall, "peak_mib": peak_kib / 1024, "rc": proc.returncode,
                  "stderr": proc.stderr.decode("utf-8", "replace")[-300:]}))
