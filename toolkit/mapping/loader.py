"""scim-resources.xml -> ResourceMappings (lxml, validated against the SDK's XSD).

Only the root element is namespace-qualified; children are looked up without a namespace.
Every problem is collected and reported at once as "FILE:LINE: message".
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.sax.saxutils import escape

from lxml import etree

from toolkit.config.mappingfile import read_mapping_tree
from toolkit.errors import FatalError
from toolkit.mapping import derived, urns
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
from toolkit.mapping.resource import ResourceMapping, ResourceMappings
from toolkit.mapping.transformations import Transformation, create_transformation

#: The built-in mapping used when a destination names no resource-mapping-file.
DEFAULT_MAPPING_PATH = Path(__file__).with_name("default-scim-resources.xml")
#: The built-in mapping for Active Directory sources (objectGUID, sAMAccountName, user, group).
AD_MAPPING_PATH = Path(__file__).with_name("ad-scim-resources.xml")
AD_SOURCE_TYPE = "active-directory"
DEFAULT_SUFFIX = "dc=example,dc=com"

_OBJECT_CLASS_TERM = re.compile(r"\(\s*objectClass\s*=\s*([^()*\s]+)\s*\)", re.IGNORECASE)
#: Sub-attributes a simpleMultiValued attribute has in SCIM 2.0 (besides `type`).
_SIMPLE_MV_SUBS = ("value", "display", "primary", "$ref")


class MappingError(FatalError):
    """The mapping file cannot be used; `errors` lists every problem as "FILE:LINE: message"."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


#: `active` from nsAccountLock, in the built-in mapping: 389-DS and Sun-lineage directories
#: have it, stock OpenLDAP's schema does not (every run would be refused over it)
_ACCOUNT_LOCK = re.compile(
    r'\n( *)<mapping ldapAttribute="nsAccountLock"\s+'
    r'transform="toolkit\.mapping\.NegatedBooleanTransformation"/>'
)
_UNMAPPED_LOCK = (
    "\n\\1<!-- OpenLDAP's schema has no nsAccountLock: `active` is left unset. Map it from\n"
    '\\1     your directory\'s own attribute, e.g. <mapping ldapAttribute="nsAccountLock"\n'
    '\\1     transform="toolkit.mapping.NegatedBooleanTransformation"/> -->'
)


def default_mapping_text(suffix: str = DEFAULT_SUFFIX, source_type: str = "ldap") -> str:
    """The built-in mapping file's text with its base DNs under `suffix` instead: the Active
    Directory mapping for an `active-directory` source, else the default one (for an
    `openldap` source without `active`'s mapping from nsAccountLock, which its stock schema
    lacks)."""
    path = AD_MAPPING_PATH if source_type == AD_SOURCE_TYPE else DEFAULT_MAPPING_PATH
    text = path.read_text(encoding="utf-8")
    if source_type == "openldap":
        text = _ACCOUNT_LOCK.sub(_UNMAPPED_LOCK, text, count=1)
    if suffix == DEFAULT_SUFFIX:
        return text
    return text.replace(DEFAULT_SUFFIX, escape(suffix, {'"': "&quot;"}))


def load_mapping(path: str | Path | None = None) -> ResourceMappings:
    """Load and check a scim-resources.xml (None = the built-in default mapping)."""
    source = Path(path) if path is not None else DEFAULT_MAPPING_PATH
    tree, errors = read_mapping_tree(source)
    if tree is None or errors:
        raise MappingError(errors)
    return _Loader(str(source)).load(tree.getroot(), source)


def mapping_problems(path: str | Path) -> list[str]:
    """Everything `load_mapping` would refuse in `path` ("FILE:LINE: message"), none if usable:
    the config check of a resource-mapping-file, so that validate refuses what a run would."""
    try:
        load_mapping(path)
    except MappingError as exc:
        return list(exc.errors)
    return []


def _children(element: etree._Element, tag: str) -> list[etree._Element]:
    return [child for child in element if child.tag == tag]


def _child(element: etree._Element, tag: str) -> etree._Element | None:
    return next((child for child in element if child.tag == tag), None)


def _text(element: etree._Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def _flag(element: etree._Element, name: str) -> bool:
    return (element.get(name) or "false").strip().lower() in ("true", "1")


def _args(element: etree._Element) -> dict[str, str]:
    """Child elements of <mapping>/<derivation>: transformation or derivation arguments."""
    return {
        etree.QName(child).localname: (child.text or "").strip()
        for child in element
        if isinstance(child.tag, str)
    }


class _Loader:
    def __init__(self, name: str) -> None:
        self.name = name
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def error(self, element: etree._Element | None, message: str) -> None:
        line = element.sourceline if element is not None else None
        self.errors.append(f"{self.name}:{line or 1}: {message}")

    def load(self, root: etree._Element, source: Path) -> ResourceMappings:
        searches = {}
        for element in _children(root, "LDAPSearch"):
            params = self.search(element)
            searches[params.id] = params
        resources: dict[str, ResourceMapping] = {}
        for element in _children(root, "resource"):
            resource = self.resource(element, searches)
            if resource is None:
                continue
            if resource.name in resources:
                self.error(element, f"resource {resource.name!r} is defined twice")
            resources[resource.name] = resource
        if self.errors:
            raise MappingError(self.errors)
        return ResourceMappings(
            resources=resources,
            searches=searches,
            path=source,
            warnings=tuple(self.warnings),
        )

    # --- LDAPSearch -------------------------------------------------------------------------

    def search(self, element: etree._Element) -> SearchParams:
        search_filter = _text(_child(element, "filter"))
        id_mapping = None
        id_element = _child(element, "resourceIDMapping")
        if id_element is not None:
            id_mapping = IdMapping(
                ldap_attribute=id_element.get("ldapAttribute", "").strip(),
                created_by=id_element.get("createdBy"),
                transformation=self.transformation(id_element, "string"),
                line=id_element.sourceline or 0,
            )
        if search_filter.count("(") != search_filter.count(")"):
            self.error(_child(element, "filter"), "unbalanced parenthesis in LDAPSearch filter")
        return SearchParams(
            id=element.get("id", ""),
            base_dns=tuple(_text(b) for b in _children(element, "baseDN")),
            filter=search_filter,
            object_classes=tuple(_OBJECT_CLASS_TERM.findall(search_filter)),
            id_mapping=id_mapping,
            line=element.sourceline or 0,
        )

    # --- resource ---------------------------------------------------------------------------

    def resource(
        self, element: etree._Element, searches: dict[str, SearchParams]
    ) -> ResourceMapping | None:
        name = element.get("name", "")
        endpoint = _text(_child(element, "endpoint"))
        core = urns.resource_schema(element.get("schema", ""), name, endpoint)
        if element.get("mapping"):
            self.warnings.append(
                f"{self.name}:{element.sourceline}: resource {name!r}: custom resource mapper "
                f"{element.get('mapping')!r} is a Java class of Ping's server; ignored"
            )
        ref = _child(element, "LDAPSearchRef")
        search = searches.get(ref.get("idref", "")) if ref is not None else None
        if search is None:
            idref = ref.get("idref") if ref is not None else None
            self.error(
                ref if ref is not None else element,
                f"LDAPSearchRef idref {idref!r} names no LDAPSearch",
            )
        attributes: list[AttributeDef] = []
        seen: set[tuple[str, str]] = set()
        for attr_element in _children(element, "attribute"):
            attribute = self.attribute(attr_element, core, searches)
            if attribute is None:
                continue
            key = (attribute.schema.lower(), attribute.name.lower())
            if key in seen:
                self.error(attr_element, f"attribute {attribute.name!r} is defined twice")
                continue
            seen.add(key)
            attributes.append(attribute)
        if search is None:
            return None
        return ResourceMapping(
            name=name,
            description=_text(_child(element, "description")),
            endpoint=endpoint,
            schema=core,
            source_schema=element.get("schema", ""),
            search=search,
            add=self.add_template(_child(element, "LDAPAdd")),
            attributes=tuple(attributes),
        )

    def add_template(self, element: etree._Element | None) -> AddTemplate | None:
        if element is None:
            return None
        return AddTemplate(
            dn_template=_text(_child(element, "DNTemplate")),
            fixed_attributes=tuple(
                FixedAttribute(
                    ldap_attribute=fixed.get("ldapAttribute", ""),
                    values=tuple(_text(v) for v in _children(fixed, "fixedValue")),
                    on_conflict=fixed.get("onConflict", "merge"),
                )
                for fixed in _children(element, "fixedAttribute")
            ),
        )

    # --- attribute --------------------------------------------------------------------------

    def attribute(
        self, element: etree._Element, core: str, searches: dict[str, SearchParams]
    ) -> AttributeDef | None:
        name = element.get("name", "")
        source_schema = element.get("schema", "")
        schema = urns.attribute_schema(source_schema, core)
        shape = next(
            (
                child
                for child in element
                if child.tag in ("simple", "complex", "simpleMultiValued", "complexMultiValued")
            ),
            None,
        )
        if shape is None:  # the XSD forbids this; kept for a clear message if it ever happens
            self.error(element, f"attribute {name!r} has no simple/complex/multi-valued shape")
            return None
        kind = shape.tag
        data_type = shape.get("dataType")
        subs = tuple(self.sub_attribute(s, schema, name) for s in _children(shape, "subAttribute"))
        if kind == "simpleMultiValued":
            # SCIM 2.0 gives every multi-valued attribute these sub-attributes.
            subs = (SubAttribute("value", data_type or "string"), SubAttribute("type"))
        elif kind == "complexMultiValued" and not any(s.name == "type" for s in subs):
            subs = (*subs, SubAttribute("type"))
        canonical = tuple(
            self.canonical_value(cv, name, kind, data_type, subs)
            for cv in _children(shape, "canonicalValue")
        )
        mapping_element = _child(shape, "mapping")
        mapping = (
            self.mapping(mapping_element, data_type or "string", f"attribute {name!r}")
            if mapping_element is not None
            else None
        )
        derivation = self.derivation(_child(element, "derivation"), name, kind, searches)
        return AttributeDef(
            name=name,
            schema=schema,
            kind=kind,
            source_schema=source_schema,
            description=_text(_child(element, "description")),
            read_only=_flag(element, "readOnly"),
            required=_flag(element, "required"),
            data_type=data_type,
            case_exact=_flag(shape, "caseExact"),
            child_name=shape.get("childName"),
            mapping=mapping,
            sub_attributes=subs,
            canonical_values=canonical,
            derivation=derivation,
            line=element.sourceline or 0,
        )

    def sub_attribute(self, element: etree._Element, schema: str, parent: str) -> SubAttribute:
        name = urns.sub_attribute_name(schema, parent, element.get("name", ""))
        data_type = element.get("dataType", "string")
        mapping_element = _child(element, "mapping")
        return SubAttribute(
            name=name,
            data_type=data_type,
            required=_flag(element, "required"),
            read_only=_flag(element, "readOnly"),
            case_exact=_flag(element, "caseExact"),
            mapping=(
                self.mapping(mapping_element, data_type, f"sub-attribute {parent}.{name}")
                if mapping_element is not None
                else None
            ),
        )

    def canonical_value(
        self,
        element: etree._Element,
        parent: str,
        kind: str,
        data_type: str | None,
        subs: tuple[SubAttribute, ...],
    ) -> CanonicalValue:
        mappings = []
        for sub_mapping in _children(element, "subMapping"):
            sub_name = sub_mapping.get("name", "")
            sub = next((s for s in subs if s.name == sub_name), None)
            if kind == "simpleMultiValued" and sub_name in _SIMPLE_MV_SUBS:
                sub_type = "boolean" if sub_name == "primary" else data_type or "string"
            elif sub is not None and sub_name != "type":
                sub_type = sub.data_type
            else:
                self.error(
                    sub_mapping,
                    f"subMapping {sub_name!r} of {parent!r} names no sub-attribute of it",
                )
                continue
            what = f"{parent}[type={element.get('name')}].{sub_name}"
            mappings.append((sub_name, self.mapping(sub_mapping, sub_type, what)))
        return CanonicalValue(name=element.get("name", ""), sub_mappings=tuple(mappings))

    def mapping(self, element: etree._Element, data_type: str, what: str) -> LdapMapping:
        return LdapMapping(
            ldap_attribute=element.get("ldapAttribute", "").strip(),
            transformation=self.transformation(element, data_type, what),
            transform=element.get("transform"),
            line=element.sourceline or 0,
        )

    def transformation(
        self, element: etree._Element, data_type: str, what: str = "resourceIDMapping"
    ) -> Transformation:
        name = element.get("transform")
        try:
            transformation = create_transformation(name, _args(element))
        except KeyError as exc:
            self.error(element, f"{what}: {exc.args[0]}")
            return create_transformation(None)
        problem = transformation.check(data_type)
        if problem:
            self.error(element, f"{what}: {problem}")
        return transformation

    def derivation(
        self,
        element: etree._Element | None,
        name: str,
        kind: str,
        searches: dict[str, SearchParams],
    ) -> Derivation | None:
        if element is None:
            return None
        java_class = element.get("javaClass", "").strip()
        derived_kind = derived.DERIVATIONS.get(java_class)
        if derived_kind is None:
            known = ", ".join(k for k in derived.DERIVATIONS if "." in k)
            self.error(
                element, f"attribute {name!r}: unknown derivation {java_class!r} (known: {known})"
            )
            return None
        if kind not in derived.SHAPES[derived_kind]:
            self.error(
                element, f"attribute {name!r}: {java_class} cannot derive a {kind} attribute"
            )
        ref = _child(element, "LDAPSearchRef")
        search_ref = ref.get("idref") if ref is not None else None
        if search_ref is not None and search_ref not in searches:
            self.error(
                ref, f"attribute {name!r}: LDAPSearchRef idref {search_ref!r} names no LDAPSearch"
            )
        args = {k: v for k, v in _args(element).items() if k != "LDAPSearchRef"}
        return Derivation(
            java_class=java_class, kind=derived_kind, search_ref=search_ref, args=args
        )
