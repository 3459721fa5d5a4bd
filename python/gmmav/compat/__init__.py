"""Stand-ins for accelerator packages on a machine without them (docs/python.md): ``torch_npu``."""
