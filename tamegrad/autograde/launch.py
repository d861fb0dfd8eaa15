"""Start a grading kernel: ``python -E -s launch.py SRC DST -- <ipykernel arguments>``.

Copies the regular files of ``SRC`` (read-only inside the sandbox) into ``DST`` (the
kernel's working directory, on the sandbox's size-limited tmpfs), changes into it and runs
ipykernel. Run by path, not with ``-m``, so that nothing of the working directory is
imported before the kernel is up; its own directory is taken off ``sys.path`` first, and
the parent of the tamegrad package it belongs to is put there (the sandbox mounts that
package alone), so both kernels run the grader's own tamegrad.
"""

import sys

del sys.path[0]

import os  # noqa: E402
import shutil  # noqa: E402

# the tamegrad this launcher belongs to (the grader's own) comes first
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _copy(src: str, dst: str) -> None:
    os.makedirs(dst, exist_ok=True)
    for root, _dirs, files in os.walk(src, followlinks=False):
        rel = os.path.relpath(root, src)
        target = os.path.normpath(os.path.join(dst, rel))
        os.makedirs(target, exist_ok=True)
        for name in files:
            path = os.path.join(root, name)
            if os.path.isfile(path) and not os.path.islink(path):
                shutil.copyfile(path, os.path.join(target, name))


def main(argv: list[str]) -> None:
    src, dst, sep, *rest = argv
    assert sep == "--"
    if os.path.isdir(src):
        _copy(src, dst)
    os.makedirs(dst, exist_ok=True)
    os.chdir(dst)
    sys.argv = ["ipykernel_launcher", *rest]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main(sys.argv[1:])
