"""What a user would deploy: fast, persistent, networked replicas and nodes.

An implementation never imports a model's logic; it may share only ``models.clock``
(the ``Clock`` protocol) and plain data types.
"""
