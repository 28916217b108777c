"""Built-in plugins of Sequence Workbench, installed as the package ``workbench_plugins``.

They register through the ``seqwb.plugins`` entry-point group exactly as third-party plugins do.  The
registration modules (``cells``, ``architectures``, ``tasks``, ``decoders``, ``templates``) import neither torch
nor Qt; the implementations they name as ``"module:attr"`` are imported only when used.
"""
