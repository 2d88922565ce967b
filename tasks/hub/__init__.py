"""The hub host: TLS, nginx, Node.js and the proxy, the virtualenv, the authenticator's secrets, the userlist, JupyterHub's configuration and service."""
