"""Recipe stages. Every module here registers one stage with ``@register_stage``; the registry finds them."""
