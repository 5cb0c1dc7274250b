"""Loads a convnet checkpoint into the matching PyTorch model with numpy alone
(tests/fixtures/st_read.py) and checks that PyTorch's eval-mode outputs equal
convnet's on the same inputs.

usage: /usr/bin/python3 tests/torch_load_check.py PRESET CHECKPOINT IO.safetensors
IO holds "input" (N,1,28,28) and "output" (N,10), written by tests/test_torch_interop.c.
Prints the largest difference; exit 0 when within 1e-4, 1 otherwise, 77 when torch is missing.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"))
import st_read  # noqa: E402

try:
    import torch
except ImportError:
    print("torch is not installed; skipped")
    sys.exit(77)
import torch_models  # noqa: E402


def main():
    preset, checkpoint, io_path = sys.argv[1:4]
    tensors, metadata = st_read.read(checkpoint)
    io, _ = st_read.read(io_path)
    model = torch_models.build(preset)
    state = {name: torch.from_numpy(array.reshape(model.state_dict()[name].shape)) for name, array in tensors.items()
             if not name.startswith("optimizer.")}
    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(io["input"])).numpy()
    err = float(abs(out - io["output"]).max())
    print(f"{preset}: {len(state)} tensors loaded (format {metadata.get('format_version')}), max |torch - convnet| = {err:.3g}")
    sys.exit(0 if err <= 1e-4 else 1)


if __name__ == "__main__":
    main()
