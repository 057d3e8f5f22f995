"""The shape of a JSON document, for the snapshot tests of the CLI's --json outputs."""


def key_paths(value, prefix=""):
    """Every key path of a JSON document, sorted (list items as [])."""
    if isinstance(value, dict):
        return sorted({p for k, v in value.items() for p in [prefix + k] + key_paths(v, prefix + k + ".")})
    if isinstance(value, list):
        return sorted({p for item in value for p in key_paths(item, prefix.rstrip(".") + "[].")})
    return []
