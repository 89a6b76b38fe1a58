"""C++ code for .proto files with Debian's protoc and grpc_cpp_plugin."""

load("@rules_cc//cc:defs.bzl", "cc_library")

def cc_grpc_library(name, protos, deps = [], visibility = None):
    """Messages and gRPC services of `protos` (names without ".proto", in
    this package) as one cc_library; includes are relative to proto/."""
    gen = []
    for p in protos:
        gen += [p + ".pb.h", p + ".pb.cc", p + ".grpc.pb.h", p + ".grpc.pb.cc"]
    native.genrule(
        name = name + "_gen",
        srcs = [p + ".proto" for p in protos],
        outs = gen,
        cmd = " ".join([
            "/usr/bin/protoc",
            "--proto_path=proto",
            "--cpp_out=$(GENDIR)/proto",
            "--grpc_out=$(GENDIR)/proto",
            "--plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin",
            "$(SRCS)",
        ]),
    )
    cc_library(
        name = name,
        srcs = [f for f in gen if f.endswith(".cc")],
        hdrs = [f for f in gen if f.endswith(".h")],
        copts = ["-Wno-unused-parameter"],
        strip_include_prefix = "/proto",
        deps = ["//third_party/system:grpc"] + deps,
        visibility = visibility,
    )
