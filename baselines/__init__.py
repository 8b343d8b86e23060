"""The built-in picking methods, registered through the ``cryobench.methods`` entry points.

Each module imports torch only inside methods, so listing methods stays light.
"""
