"""Local files sent to a host as one tar on stdin, with the manifest its probe compares with."""

import hashlib
import io
import tarfile


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
