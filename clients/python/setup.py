"""Builds the herald package, generating its gRPC stubs from proto/.

The stubs (herald/v1/*_pb2.py) are compiled from the repository's
proto/herald/v1 with grpcio-tools at build time, so the client always matches
the wire contract it is built with. HERALD_PROTO_DIR overrides where the
protos are found.
"""

import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def proto_dir() -> Path:
    explicit = os.environ.get("HERALD_PROTO_DIR")
    for candidate in ([Path(explicit)] if explicit else []) + [HERE.parent.parent / "proto", HERE / "proto"]:
        if (candidate / "herald" / "v1" / "handler.proto").exists():
            return candidate
    raise RuntimeError("cannot find proto/herald/v1: set HERALD_PROTO_DIR")


class BuildWithStubs(build_py):
    def run(self):
        super().run()
        from grpc_tools import protoc
        import grpc_tools

        root = proto_dir()
        include = Path(grpc_tools.__file__).parent / "_proto"
        out = Path(self.build_lib)
        protos = sorted(str(p) for p in (root / "herald" / "v1").glob("*.proto"))
        args = ["protoc", f"-I{root}", f"-I{include}", f"--python_out={out}",
                f"--grpc_python_out={out}"] + protos
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed")
        (out / "herald" / "v1" / "__init__.py").touch()


setup(cmdclass={"build_py": BuildWithStubs})
