"""Start a grading kernel: ``python -E -s launch.py SRC DST CHARS -- <ipykernel arguments>``.

Copies the regular files of ``SRC`` (read-only inside the sandbox) into ``DST`` (the
kernel's working directory, on the sandbox's size-limited tmpfs), changes into it and runs
ipykernel. Run by path, not with ``-m``, so that nothing of the working directory is
imported before the kernel is up; its own directory is taken off ``sys.path`` first, and
the parent of the tamegrad package it belongs to is put there (the sandbox mounts that
package alone), so both kernels run the grader's own tamegrad.

Before the kernel starts, every message it builds is cut to about ``CHARS`` characters
(:func:`_cut_messages`): an honest 300 MB error or print reaches the grader truncated
instead of being refused for its size. A courtesy only: code in the kernel can undo it;
what protects the grader is its own cap (:attr:`.sandbox.Limits.message_bytes`).
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


def _cut(value, room: list[int]):
    """``value`` with each string cut to half the characters left in ``room`` (shared)."""
    if isinstance(value, str):
        keep = min(len(value), room[0] // 2)
        room[0] -= keep
        return value if keep == len(value) else value[:keep] + "\n[truncated in the kernel]"
    if isinstance(value, dict):
        return {k: _cut(v, room) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_cut(v, room) for v in value]
    return value


def _cut_messages(chars: int) -> None:
    """Every message the kernel's Session builds holds at most ``chars`` characters of content."""
    from jupyter_client.session import Session

    build = Session.msg

    def msg(self, msg_type, content=None, *args, **kwargs):
        return build(self, msg_type, _cut(content, [chars]) if content else content, *args, **kwargs)

    msg.__wrapped__ = build
    Session.msg = msg


def main(argv: list[str]) -> None:
    src, dst, chars, sep, *rest = argv
    assert sep == "--"
    _cut_messages(int(chars))
    if os.path.isdir(src):
        _copy(src, dst)
    os.makedirs(dst, exist_ok=True)
    os.chdir(dst)
    sys.argv = ["ipykernel_launcher", *rest]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main(sys.argv[1:])
