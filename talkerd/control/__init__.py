"""The control plane: the socket protocol, the server, the methods (api), and talkerctl (client)."""
