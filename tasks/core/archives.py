"""Local files sent to a host as one tar on stdin, with the manifest its probe compares with."""

import hashlib
import io
import shlex
import tarfile

from . import facts


def folder_archive(files, prefix=""):
    """(manifest, tar bytes) of ``files`` ({name on the host: local path}), in their order.

    Manifest lines are ``sha256  PREFIXname``, as ``sha256sum`` prints them on the host.
    """
    manifest = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {prefix}{name}\n" for name, p in files.items())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, path in files.items():
            tar.add(path, arcname=name)
    return manifest, buffer.getvalue()


def manifest_fact(folder):
    """The manifest of a folder on the host (``sha256  ./path`` lines), "" when it is absent."""
    q = shlex.quote(folder)
    return facts.Fact(
        f"manifest:{folder}",
        f"cd {q} && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum",
        parse=facts.output,
    )


def unpack_script(folder):
    """Make ``folder`` exactly the tar on stdin (files it lacks are removed)."""
    q, new = shlex.quote(folder), shlex.quote(folder + ".new")
    return (
        f"rm -rf {new} && install -d {new} && tar -x --no-same-owner -C {new} && "
        f"chmod -R a+rX {new} && rsync -a --delete {new}/ {q}/ && rm -rf {new}"
    )
