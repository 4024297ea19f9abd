"""scim-resources.xml -> mapping model; LDAP entry -> SCIM 2.0 resource; comparable forms.

mappings = load_mapping(path)              # None = the built-in default mapping
users = mappings["User"]
resource = users.to_scim(entry, resolver)  # entry: {"dn": ..., "uid": ["bjensen"], ...}
users.normalize(resource) == users.normalize(resource_from_server)   # no change?
"""

from __future__ import annotations

from toolkit.mapping.derived import DictResolver, OnUnresolved, Resolver
from toolkit.mapping.loader import (
    AD_MAPPING_PATH,
    DEFAULT_MAPPING_PATH,
    MappingError,
    default_mapping_text,
    load_mapping,
)
from toolkit.mapping.model import (
    AddTemplate,
    AttributeDef,
    CanonicalValue,
    Derivation,
    FixedAttribute,
    IdMapping,
    LdapMapping,
    SearchParams,
    SubAttribute,
)
from toolkit.mapping.resource import (
    Entry,
    MappingValueError,
    ResourceMapping,
    ResourceMappings,
)
from toolkit.mapping.transformations import (
    AccountEnabledTransformation,
    Base64Transformation,
    BinaryValueError,
    BooleanTransformation,
    DefaultTransformation,
    GeneralizedTimeTransformation,
    NegatedBooleanTransformation,
    PostalAddressTransformation,
    TelephoneNumberTransformation,
    Transformation,
    TransformationError,
    create_transformation,
    register_transformation,
)

__all__ = [
    "AD_MAPPING_PATH",
    "DEFAULT_MAPPING_PATH",
    "AccountEnabledTransformation",
    "AddTemplate",
    "AttributeDef",
    "Base64Transformation",
    "BinaryValueError",
    "BooleanTransformation",
    "CanonicalValue",
    "DefaultTransformation",
    "Derivation",
    "DictResolver",
    "Entry",
    "FixedAttribute",
    "GeneralizedTimeTransformation",
    "IdMapping",
    "LdapMapping",
    "MappingError",
    "MappingValueError",
    "NegatedBooleanTransformation",
    "OnUnresolved",
    "PostalAddressTransformation",
    "Resolver",
    "ResourceMapping",
    "ResourceMappings",
    "SearchParams",
    "SubAttribute",
    "TelephoneNumberTransformation",
    "Transformation",
    "TransformationError",
    "create_transformation",
    "default_mapping_text",
    "load_mapping",
    "register_transformation",
]
