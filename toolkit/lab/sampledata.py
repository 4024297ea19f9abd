"""Deterministic, realistic sample directory data: people and groups.

`generate(users, groups, seed)` yields entries as dicts (`"dn"` plus attribute -> values);
the same size and seed always give the same data. The data has what real directories have
and what a sync must cope with: non-ASCII names, several mail values, telephone numbers in
many formats, postal addresses with escapes, a manager hierarchy, employee numbers,
departments, disabled accounts (`nsAccountLock: TRUE`, as in 389-DS), and groups whose sizes
range from one member to a large share of everyone.
"""

from __future__ import annotations

import base64
import gzip
import random
import unicodedata
from collections.abc import Iterator
from pathlib import Path

SampleEntry = dict[str, list[str]]

FIRST = (
    "Anna Ben Chloé Dmitri Émile Fatima Günther Hana Ingrid José Kai Łukasz María Nguyễn "
    "Olga Pál Quentin Renée Søren Tomás Ursula Vikram Wiebke Xavier Yusuf Zoë Åsa Björn "
    "Chiara Darius Elif François Giulia Hiroshi Ines Jürgen Katarzyna Lars Mateo Nora "
    "Oğuz Priya Rafael Siobhán Thabo Ulla Valentina Wei Yasmin Zeynep"
).split()
LAST = (
    "Müller Schmidt García Nuñez O'Brien Dubois Rossi Kowalski Nakamura Tanaka Ivanova "
    "Johansson Ångström Øster Kim Lee Patel Singh Silva Costa Smith Jones Brown Taylor "
    "Martin Bernard Leroy Moreau Fischer Weber Wagner Becker Hoffmann Novák Horváth Yılmaz "
    "Papadopoulos Nielsen Hansen Eriksson Virtanen Mäkinen Murphy Kelly Walsh Quinn Ng Wong"
).split()
DEPARTMENTS = (
    "Engineering",
    "Sales",
    "Marketing",
    "Finance",
    "Legal",
    "Support",
    "Research",
    "Operations",
    "Human Resources",
    "Facilities",
    "Security",
    "Product",
    "Design",
    "Procurement",
)
TITLES = (
    "Engineer",
    "Senior Engineer",
    "Staff Engineer",
    "Analyst",
    "Account Executive",
    "Designer",
    "Support Specialist",
    "Counsel",
    "Accountant",
    "Recruiter",
    "Product Manager",
    "Researcher",
    "Technician",
    "Director",
    "Vice President",
)
CITIES = (
    ("Austin", "TX", "78701", "+1 512 555 {n:04d}"),
    ("Berlin", "BE", "10115", "+49 30 5550{n:04d}"),
    ("Paris", "IDF", "75002", "+33 1 55 50 {a:02d} {b:02d}"),
    ("Tokyo", "13", "100-0005", "+81 3-5550-{n:04d}"),
    ("São Paulo", "SP", "01310-100", "+55 11 5550-{n:04d}"),
    ("Kraków", "MA", "31-000", "+48 12 555 {n:04d}"),
    ("Dublin", "D", "D02 X285", "(01) 555 {n:04d}"),
)
STREETS = (
    "Main St",
    "Hauptstraße",
    "Rue de la Paix",
    "Ginza 4-chome",
    "Avenida Paulista",
    "Rynek Główny",
    "O'Connell St",
)
LANGUAGES = ("en-US", "de-DE", "fr-FR", "ja-JP", "pt-BR", "pl-PL", "en-IE")
EMPLOYEE_TYPES = ("Employee",) * 8 + ("Contractor", "Intern")
GROUP_TOPICS = (
    "all-staff",
    "engineering",
    "sales",
    "vpn-users",
    "wiki-editors",
    "on-call",
    "project-apollo",
    "project-zephyr",
    "finance-approvers",
    "managers",
    "interns",
    "security-champions",
    "design-guild",
    "legal-hold",
    "berlin-office",
    "tokyo-office",
)


def ascii_fold(text: str) -> str:
    """'Łukasz Ångström' -> 'lukaszangstrom' (for uid and mail local parts)."""
    text = text.replace("ł", "l").replace("Ł", "L").replace("ø", "o").replace("Ø", "O")
    text = text.replace("ß", "ss").replace("ı", "i")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and c.isalnum()).lower()


def _person(i: int, rnd: random.Random, suffix: str, manager_dn: str | None) -> SampleEntry:
    first, last = rnd.choice(FIRST), rnd.choice(LAST)
    uid = f"{ascii_fold(first)}.{ascii_fold(last)}{i}"
    city, st, postal, phone = CITIES[i % len(CITIES)]
    n = rnd.randrange(10000)
    dept = DEPARTMENTS[rnd.randrange(len(DEPARTMENTS))]
    street = f"{rnd.randrange(1, 400)} {rnd.choice(STREETS)}"
    entry: SampleEntry = {
        "dn": [f"uid={uid},ou=people,{suffix}"],
        "objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson"],
        "uid": [uid],
        "cn": [f"{first} {last}"],
        "sn": [last],
        "givenName": [first],
        "displayName": [f"{last}, {first}" if i % 5 == 0 else f"{first} {last}"],
        "mail": [f"{uid}@example.com"],
        "telephoneNumber": [phone.format(n=n, a=n // 100, b=n % 100)],
        "postalAddress": [f"{street}${city} {st} {postal}"],
        "street": [street],
        "l": [city],
        "st": [st],
        "postalCode": [postal],
        "title": [TITLES[rnd.randrange(len(TITLES))]],
        "employeeNumber": [str(100000 + i)],
        "departmentNumber": [dept],
        "employeeType": [rnd.choice(EMPLOYEE_TYPES)],
        "preferredLanguage": [LANGUAGES[i % len(LANGUAGES)]],
        "o": ["Example Corp"],
    }
    if i % 3 == 0:  # aliases: several mail values
        entry["mail"].append(f"{ascii_fold(first)}.{ascii_fold(last)}@corp.example.com")
    if i % 11 == 0:
        entry["mail"].append(f"{uid}@example.org")
        entry["telephoneNumber"].append(f"+1 512 555 {n:04d} x{rnd.randrange(100, 999)}")
    if i % 4 == 0:
        entry["mobile"] = [f"+1 (512) 555-{rnd.randrange(10000):04d}"]
    if i % 97 == 0:  # PostalAddress escapes: '$' inside a line is \24, '\' is \5C
        entry["postalAddress"] = [f"c/o Cash \\24 Carry GmbH${street}${city} {st} {postal}"]
    if manager_dn:
        entry["manager"] = [manager_dn]
    if i % 31 == 7:  # disabled accounts, as 389-DS marks them
        entry["objectClass"].append("nsAccount")
        entry["nsAccountLock"] = ["TRUE"]
    return entry


def _manager_of(i: int, rnd: random.Random, managers: int) -> int | None:
    """user 0 heads everyone; managers report to lower-numbered managers; others to a manager."""
    if i == 0:
        return None
    if i < managers:
        return rnd.randrange(i)
    return rnd.randrange(managers)


def _group_sizes(groups: int, users: int, rnd: random.Random) -> list[int]:
    """Very different sizes: one near-everyone group, a long tail of small ones."""
    sizes = []
    for g in range(groups):
        if g == 0:
            size = max(1, int(users * 0.4))
        else:
            size = int(users * 0.25 / (g**1.3)) + rnd.randrange(1, 6)
        sizes.append(max(1, min(users, size)))
    return sizes


def generate(
    users: int = 2000, groups: int = 50, seed: int = 0, suffix: str = "dc=example,dc=com"
) -> Iterator[SampleEntry]:
    """Yield `users` people under ou=people, then `groups` groupOfNames under ou=groups."""
    rnd = random.Random(seed)
    managers = max(1, users // 50)
    dns: list[str] = []
    for i in range(users):
        boss = _manager_of(i, rnd, managers)
        entry = _person(i, rnd, suffix, dns[boss] if boss is not None else None)
        dns.append(entry["dn"][0])
        yield entry
    for g, size in enumerate(_group_sizes(groups, users, rnd)):
        topic = GROUP_TOPICS[g % len(GROUP_TOPICS)]
        name = topic if g < len(GROUP_TOPICS) else f"{topic}-{g}"
        members = sorted(rnd.sample(range(users), size)) if users else []
        yield {
            "dn": [f"cn={name},ou=groups,{suffix}"],
            "objectClass": ["top", "groupOfNames"],
            "cn": [name],
            "description": [f"Sample group {name} ({size} members)"],
            "member": [dns[m] for m in members],
        }


def _ldif_line(attr: str, value: str) -> str:
    safe = value.isascii() and value[:1] not in (" ", ":", "<") and not value.endswith(" ")
    safe = safe and "\n" not in value and "\r" not in value and "\0" not in value
    if safe:
        return f"{attr}: {value}\n"
    return f"{attr}:: {base64.b64encode(value.encode()).decode()}\n"


def to_ldif(entry: SampleEntry) -> str:
    lines = [_ldif_line("dn", entry["dn"][0])]
    for attr, values in entry.items():
        if attr != "dn":
            lines.extend(_ldif_line(attr, v) for v in values)
    return "".join(lines) + "\n"


def write_ldif(
    path: Path | str,
    users: int = 2000,
    groups: int = 50,
    seed: int = 0,
    suffix: str = "dc=example,dc=com",
) -> Path:
    """Write the sample entries (without the suffix and ou entries) as LDIF; .gz compresses."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as out:
        for entry in generate(users, groups, seed, suffix):
            out.write(to_ldif(entry))
    return path
