"""`raygex bench scale --address --store-uri` on a cluster whose nodes share nothing but an S3 server
(:class:`tests.cluster.isolated.IsolatedCluster`: a head offering no CPUs, worker nodes with private /tmp and
working folders, moto on 127.0.0.1 inside the cluster's own network).

    python -m tests.cluster.bench_scale_isolated --size 50000x20000 --store-mb 3500 [--workers 2]

prints the bench's table and writes its JSON beside the cluster's logs (the path is printed last)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.cluster.isolated import IsolatedCluster


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", action="append", required=True, help="SAMPLESxGENES (repeatable)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--store-mb", type=int, default=2560)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    workspace = Path(tempfile.mkdtemp(prefix="raygex-bench-isolated-", dir=args.workdir))
    with IsolatedCluster(workspace, workers=args.workers, cpus=args.cpus, store_mb=args.store_mb) as cluster:
        made = cluster.python("import boto3; boto3.client('s3', endpoint_url=%r, region_name='us-east-1')"
                              ".create_bucket(Bucket='bench')" % cluster.s3_endpoint)
        if made.returncode != 0:
            print(made.stderr, file=sys.stderr)
            return 1
        out = workspace / "scale.json"
        sizes = [a for size in args.size for a in ("--size", size)]
        done = cluster.run([sys.executable, "-m", "raygex", "bench", "scale", "--address", cluster.address,
                            "--store-uri", "s3://bench/scale", *sizes, "--epochs", str(args.epochs),
                            "--out", str(out)], cwd=workspace, timeout=6 * 3600)
        print(done.stdout)
        if done.returncode != 0:
            print(done.stderr[-5000:], file=sys.stderr)
            return done.returncode
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
