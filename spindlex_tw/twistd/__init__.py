"""The ``twistd spindlex`` product: options, the service, the embedded default application,
password and authorized_keys files, processes for exec/shell, and worker processes."""
