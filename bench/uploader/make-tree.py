"""The uploader benches' tree: a quarter of the bytes in 20-180 KiB files, the rest in four large files; random
content, so that nothing compresses or deduplicates by accident.

    python3 make-tree.py DIRECTORY TOTAL_MIB
"""
import os, sys
root, total = sys.argv[1], int(sys.argv[2]) << 20
small_total, large_count = total // 4, 4
os.makedirs(root)
written, index = 0, 0
while written < small_total:
    size = 20_000 + (index * 7919) % 160_000
    directory = os.path.join(root, "docs", f"{index // 200:03d}")
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, f"file-{index:05d}.bin"), "wb") as f:
        f.write(os.urandom(size))
    written += size
    index += 1
large = (total - written) // large_count
os.makedirs(os.path.join(root, "video"))
for n in range(large_count):
    with open(os.path.join(root, "video", f"tape-{n}.dv"), "wb") as f:
        # Sizes differ slightly, as real tapes do (equal sizes would make the uploader hash before sending).
        remaining = large - n * 4096
        while remaining:
            chunk = min(remaining, 8 << 20)
            f.write(os.urandom(chunk))
            remaining -= chunk
print(f"{index} small files, {large_count} large files", file=sys.stderr)
