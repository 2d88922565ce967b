"""One ``fab`` invocation: its run (every setting checked first) and its hosts, named with ``-H`` or found in EC2 by their tags."""
