"""Synthetic Enhetsregisteret units and their side records, in the registers' real formats.

Everything here is built for speed: a million units must render in well under a minute, so
records are assembled from prebuilt text fragments instead of `json.dumps`. That is safe only
because every string comes from the vocabularies below, which hold no `"`, `\\` or control
characters, and stay within Latin-1 (mixed widths would make CPython copy every chunk twice).
Names are generated combinations of common names: no real person is named.

`UnitFactory` draws one unit as a plain dict; the `render_*` functions turn it into the dump
text (Jackson pretty-print), the API body, a CSV row, and the roles, accounts, sub-unit,
address and home-page lines that belong to it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import zlib
from collections.abc import Callable, Sequence
from typing import Any

BRREG_API = "https://data.brreg.no/enhetsregisteret/api"
DUMP_DATE = dt.date(2026, 8, 5)

Unit = dict[str, Any]
# (lines, postnummer, poststed, kommune, kommunenummer, land, landkode, street, kommune index)
# street is (adressenavn, nummer, bokstav) for a Norwegian street address, else None.
Address = tuple[Any, ...]

# -- legal forms ------------------------------------------------------------------------------
# (code, description, share in 1/10000). The big eight follow REGISTERS.md; the rest share 3.3%.
FORMS: tuple[tuple[str, str, int], ...] = (
    ("ENK", "Enkeltpersonforetak", 3900),
    ("AS", "Aksjeselskap", 3700),
    ("FLI", "Forening/lag/innretning", 1100),
    ("ESEK", "Eierseksjonssameie", 300),
    ("UTLA", "Utenlandsk enhet", 240),
    ("NUF", "Norskregistrert utenlandsk foretak", 220),
    ("BRL", "Borettslag", 110),
    ("DA", "Ansvarlig selskap med delt ansvar", 100),
    ("SA", "Samvirkeforetak", 51),
    ("STI", "Stiftelse", 60),
    ("ORGL", "Organisasjonsledd", 50),
    ("ANS", "Ansvarlig selskap med solidarisk ansvar", 40),
    ("SAM", "Tingsrettslig sameie", 40),
    ("KS", "Kommandittselskap", 20),
    ("ADOS", "Administrativ enhet - offentlig sektor", 15),
    ("PRE", "Partsrederi", 10),
    ("BA", "Selskap med begrenset ansvar", 10),
    ("KIRK", "Den norske kirke", 5),
    ("KF", "Kommunalt foretak", 5),
    ("IKS", "Interkommunalt selskap", 4),
    ("KOMM", "Kommune", 4),
    ("ASA", "Allmennaksjeselskap", 3),
    ("SPA", "Sparebank", 2),
    ("STAT", "Staten", 2),
    ("BBL", "Boligbyggelag", 2),
    ("SF", "Statsforetak", 2),
    ("VPFO", "Verdipapirfond", 2),
    ("FYLK", "Fylkeskommune", 1),
    ("PK", "Pensjonskasse", 1),
    ("GFS", "Gjensidig forsikringsselskap", 1),
)
FORM_NAMES: dict[str, str] = {code: text for code, text, _ in FORMS}
FORM_TABLE: list[str] = [code for code, _, share in FORMS for _ in range(share)]
assert len(FORM_TABLE) == 10_000

# Forms that send annual accounts to Regnskapsregisteret, with the share of units that have filed.
ACCOUNT_FILERS: dict[str, float] = {
    "AS": 0.82, "ASA": 1.0, "SA": 0.7, "NUF": 0.55, "BA": 0.6, "SPA": 1.0, "GFS": 1.0, "PK": 1.0,
    "BBL": 0.8, "IKS": 0.5, "SF": 1.0, "KS": 0.1, "DA": 0.04, "ANS": 0.04, "STI": 0.25, "BRL": 0.7,
}
ENTERPRISE_FORMS = frozenset({
    "AS", "ASA", "NUF", "DA", "ANS", "SA", "KS", "BA", "SPA", "SF", "GFS", "PRE", "IKS"},
)
PUBLIC_PARENT_FORMS = frozenset({"KOMM", "STAT", "FYLK"})
PUBLIC_FORMS = frozenset({"KOMM", "STAT", "FYLK", "ORGL", "ADOS", "KF", "IKS", "KIRK"})

HOMEPAGE_SHARE: dict[str, float] = {
    "ENK": 0.06, "AS": 0.11, "FLI": 0.22, "BRL": 0.44, "ESEK": 0.08, "UTLA": 0.03,
}
EMPLOYER_SHARE: dict[str, float] = {
    "ENK": 0.10, "AS": 0.50, "FLI": 0.08, "ESEK": 0.01, "UTLA": 0.10, "NUF": 0.35, "BRL": 0.05,
    "KOMM": 1.0, "STAT": 1.0, "FYLK": 1.0, "ASA": 1.0, "SPA": 1.0, "ORGL": 0.8,
}
MVA_SHARE: dict[str, float] = {
    "ENK": 0.45, "AS": 0.68, "FLI": 0.1, "ESEK": 0.02, "BRL": 0.05, "UTLA": 0.6, "NUF": 0.6,
}
GROUP_SHARE: dict[str, float] = {"AS": 0.08, "ASA": 0.5, "SPA": 0.5}
PURPOSE_SHARE: dict[str, float] = {
    "AS": 0.5, "FLI": 0.8, "STI": 1.0, "SA": 0.7, "BRL": 0.9, "ESEK": 0.5, "ASA": 1.0,
}

SECTORS: dict[str, str] = {
    "2100": "Private aksjeselskaper mv.",
    "8200": "Personlig næringsdrivende",
    "2500": "Private personlige foretak og ansvarlige selskaper",
    "7000": "Ideelle organisasjoner",
    "8500": "Private husholdninger med boligformål",
    "9000": "Utlandet",
    "6500": "Kommuneforvaltningen",
    "6100": "Statsforvaltningen",
    "1120": "Statlig eide aksjeselskaper mv.",
    "3200": "Banker",
    "4100": "Forsikringsselskaper og pensjonskasser",
}
FORM_SECTOR: dict[str, str] = {
    "ENK": "8200", "DA": "2500", "ANS": "2500", "KS": "2500", "PRE": "2500", "SAM": "2500",
    "FLI": "7000", "STI": "7000", "ESEK": "8500", "BRL": "8500", "BBL": "8500",
    "UTLA": "9000", "NUF": "9000", "KOMM": "6500", "ORGL": "6500", "ADOS": "6500", "KF": "6500",
    "IKS": "6500", "KIRK": "6500", "FYLK": "6500", "STAT": "6100", "SF": "1120", "SPA": "3200",
    "GFS": "4100", "PK": "4100", "VPFO": "4100",
}

# -- industry codes (SN2025 `dd.ddd`; a few SN2007 codes survive in older units) ---------------
NACE: dict[str, str] = {
    "01.110": "Dyrking av korn, belgvekster og oljeholdige vekster",
    "01.410": "Melkeproduksjon på storfe",
    "01.450": "Saue- og geitehold",
    "02.100": "Skogskjøtsel og andre skogbruksaktiviteter",
    "03.111": "Hav- og kystfiske",
    "03.211": "Produksjon av matfisk og skalldyr i hav- og kystbasert akvakultur",
    "10.710": "Produksjon av brød og ferske konditorvarer",
    "16.100": "Saging, høvling og impregnering av tre",
    "25.110": "Produksjon av metallkonstruksjoner og deler",
    "33.120": "Reparasjon av maskiner",
    "41.000": "Oppføring av bygninger",
    "43.120": "Grunnarbeid",
    "43.210": "Elektrisk installasjonsarbeid",
    "43.220": "VVS-arbeid",
    "43.320": "Snekkerarbeid",
    "43.341": "Malerarbeid",
    "43.910": "Takarbeid",
    "45.200": "Vedlikehold og reparasjon av motorvogner",
    "46.190": "Agenturhandel med bredt utvalg av varer",
    "47.110": "Butikkhandel med bredt vareutvalg med hovedvekt på nærings- og nytelsesmidler",
    "47.710": "Butikkhandel med klær",
    "47.910": "Detaljhandel via Internett",
    "49.320": "Drosjebiltransport",
    "49.410": "Godstransport på vei",
    "50.201": "Utenriks sjøfart med gods",
    "55.101": "Drift av hoteller, pensjonater og moteller med restaurant",
    "56.110": "Restaurantvirksomhet",
    "62.100": "Dataprogrammering",
    "62.200": "Konsulentvirksomhet tilknyttet informasjonsteknologi",
    "64.190": "Bankvirksomhet ellers",
    "64.210": "Holdingselskaper",
    "68.100": "Kjøp og salg av egen fast eiendom",
    "68.200": "Utleie av egen eller leid fast eiendom",
    "68.320": "Eiendomsforvaltning",
    "69.100": "Juridisk tjenesteyting",
    "69.201": "Revisjon",
    "69.202": "Regnskap og bokføring",
    "70.200": "Bedriftsrådgivning og annen administrativ rådgivning",
    "71.110": "Arkitekttjenester vedrørende byggverk",
    "71.121": "Byggeteknisk konsulentvirksomhet",
    "73.110": "Reklamebyråer",
    "74.100": "Spesialisert designvirksomhet",
    "74.200": "Fotografvirksomhet",
    "77.110": "Utleie og leasing av biler og andre lette motorvogner",
    "81.210": "Rengjøring av bygninger",
    "81.300": "Beplantning av hager og parkanlegg",
    "84.110": "Generell offentlig administrasjon",
    "85.201": "Ordinær grunnskoleundervisning",
    "85.510": "Undervisning innen idrett og rekreasjon",
    "85.520": "Undervisning i kulturfag",
    "86.211": "Allmenn legetjeneste",
    "86.230": "Tannhelsetjenester",
    "86.950": "Fysioterapitjenester",
    "88.911": "Barnehager",
    "90.110": "Selvstendig skribentvirksomhet",
    "90.130": "Selvstendig musikalsk virksomhet",
    "93.120": "Idrettslag og -klubber",
    "94.120": "Aktiviteter i yrkessammenslutninger",
    "94.910": "Aktiviteter i religiøse sammenslutninger",
    "94.991": "Aktiviteter i andre interesseorganisasjoner ellers",
    "94.995": "Velforeninger",
    "96.210": "Frisering og barbering",
    "96.220": "Skjønnhetspleie og annen kosmetisk behandling",
    # SN2007 codes, kept by units nobody has recoded yet.
    "41.200": "Oppføring av bygninger",
    "62.010": "Programmeringstjenester",
    "64.200": "Holdingselskaper",
    "68.209": "Utleie av egen eller leid fast eiendom ellers",
    "70.220": "Bedriftsrådgivning og annen administrativ rådgivning",
    "96.020": "Frisering og annen skjønnhetspleie",
}
SN2007_CODES: tuple[str, ...] = ("41.200", "62.010", "64.200", "68.209", "70.220", "96.020")

_NACE_ENK = (
    "43.320", "43.210", "43.220", "43.341", "49.320", "49.410", "96.210", "96.220", "74.100", "74.200",
    "62.100", "70.200", "01.410", "01.450", "01.110", "02.100", "03.111", "90.110", "90.130", "85.520",
    "86.950", "81.210", "81.300", "45.200", "68.200", "47.910", "56.110", "43.910",
)
_NACE_AS = (
    "68.200", "68.200", "68.100", "64.210", "64.210", "64.210", "41.000", "43.120", "43.210", "43.220",
    "62.100", "62.200", "70.200", "47.110", "47.710", "47.910", "56.110", "46.190", "49.410", "71.121",
    "71.110", "73.110", "69.202", "45.200", "25.110", "33.120", "10.710", "16.100", "50.201", "03.211",
    "55.101", "86.230", "88.911", "77.110", "69.100",
)
_NACE_FLI = ("93.120", "93.120", "94.991", "94.995", "94.910", "94.120", "85.510", "88.911", "90.130")
_NACE_HOUSING = ("68.200", "68.320")
_NACE_FOREIGN = ("41.000", "43.320", "49.410", "62.200", "70.200", "46.190", "50.201", "43.120")
_NACE_PUBLIC = ("84.110", "84.110", "85.201", "88.911", "86.211")
NACE_BY_FORM: dict[str, tuple[str, ...]] = {
    "ENK": _NACE_ENK, "FLI": _NACE_FLI, "STI": _NACE_FLI, "ESEK": _NACE_HOUSING, "BRL": _NACE_HOUSING,
    "SAM": _NACE_HOUSING, "BBL": _NACE_HOUSING, "UTLA": _NACE_FOREIGN, "NUF": _NACE_FOREIGN,
    "KOMM": _NACE_PUBLIC, "ORGL": _NACE_PUBLIC, "ADOS": _NACE_PUBLIC, "STAT": _NACE_PUBLIC,
    "FYLK": _NACE_PUBLIC, "KF": _NACE_PUBLIC, "KIRK": ("94.910",), "SPA": ("64.190",), "PK": ("64.190",),
}

# -- places -----------------------------------------------------------------------------------
# (kommunenummer, kommune, poststed, lat, lon, population in thousands, postcode ranges)
KOMMUNER: tuple[tuple[str, str, str, float, float, int, tuple[tuple[int, int], ...]], ...] = (
    ("0301", "OSLO", "OSLO", 59.913, 10.752, 717, (
        (150, 198), (250, 287), (350, 380), (450, 496), (550, 598), (650, 698), (750, 791), (850, 884),
        (950, 988), (1051, 1088), (1150, 1187), (1250, 1295),
    )),
    ("4601", "BERGEN", "BERGEN", 60.392, 5.324, 291, ((5003, 5059), (5072, 5098), (5105, 5148))),
    ("5001", "TRONDHEIM", "TRONDHEIM", 63.430, 10.395, 214, ((7010, 7058), (7066, 7099))),
    ("1103", "STAVANGER", "STAVANGER", 58.970, 5.733, 150, ((4005, 4048),)),
    ("3201", "BÆRUM", "SANDVIKA", 59.890, 10.525, 130, ((1300, 1339),)),
    ("3203", "ASKER", "ASKER", 59.833, 10.435, 98, ((1383, 1397),)),
    ("3205", "LILLESTRØM", "LILLESTRØM", 59.956, 11.050, 90, ((2000, 2027),)),
    ("3207", "NORDRE FOLLO", "SKI", 59.719, 10.835, 62, ((1400, 1412),)),
    ("3209", "ULLENSAKER", "JESSHEIM", 60.141, 11.175, 42, ((2050, 2068),)),
    ("3222", "LØRENSKOG", "LØRENSKOG", 59.927, 10.963, 48, ((1470, 1479),)),
    ("3301", "DRAMMEN", "DRAMMEN", 59.744, 10.204, 103, ((3001, 3048),)),
    ("3303", "KONGSBERG", "KONGSBERG", 59.668, 9.650, 28, ((3601, 3619),)),
    ("3107", "FREDRIKSTAD", "FREDRIKSTAD", 59.220, 10.934, 84, ((1601, 1640),)),
    ("3105", "SARPSBORG", "SARPSBORG", 59.284, 11.110, 59, ((1701, 1747),)),
    ("3103", "MOSS", "MOSS", 59.434, 10.658, 51, ((1501, 1599),)),
    ("3101", "HALDEN", "HALDEN", 59.124, 11.387, 32, ((1751, 1798),)),
    ("4204", "KRISTIANSAND", "KRISTIANSAND S", 58.147, 7.996, 116, ((4608, 4639),)),
    ("4203", "ARENDAL", "ARENDAL", 58.461, 8.772, 46, ((4801, 4848),)),
    ("5501", "TROMSØ", "TROMSØ", 69.649, 18.955, 78, ((9006, 9024),)),
    ("5503", "HARSTAD", "HARSTAD", 68.798, 16.541, 25, ((9401, 9415),)),
    ("5601", "ALTA", "ALTA", 69.969, 23.271, 21, ((9501, 9518),)),
    ("5603", "HAMMERFEST", "HAMMERFEST", 70.663, 23.682, 11, ((9600, 9616),)),
    ("5605", "SØR-VARANGER", "KIRKENES", 69.727, 30.045, 10, ((9900, 9917),)),
    ("5607", "VADSØ", "VADSØ", 70.074, 29.749, 6, ((9800, 9815),)),
    ("1108", "SANDNES", "SANDNES", 58.852, 5.735, 83, ((4306, 4329),)),
    ("1124", "SOLA", "SOLA", 58.888, 5.651, 28, ((4050, 4070),)),
    ("1106", "HAUGESUND", "HAUGESUND", 59.413, 5.268, 38, ((5501, 5538),)),
    ("1149", "KARMØY", "KOPERVIK", 59.283, 5.306, 43, ((4250, 4276),)),
    ("4614", "STORD", "STORD", 59.779, 5.500, 19, ((5401, 5419),)),
    ("4621", "VOSS", "VOSS", 60.628, 6.415, 16, ((5700, 5710),)),
    ("4647", "SUNNFJORD", "FØRDE", 61.452, 5.857, 22, ((6800, 6819),)),
    ("1508", "ÅLESUND", "ÅLESUND", 62.472, 6.149, 58, ((6002, 6018),)),
    ("1506", "MOLDE", "MOLDE", 62.737, 7.159, 32, ((6401, 6416),)),
    ("1505", "KRISTIANSUND", "KRISTIANSUND N", 63.110, 7.728, 24, ((6501, 6518),)),
    ("1804", "BODØ", "BODØ", 67.280, 14.405, 53, ((8003, 8041),)),
    ("1806", "NARVIK", "NARVIK", 68.438, 17.427, 22, ((8501, 8523),)),
    ("1833", "RANA", "MO I RANA", 66.313, 14.142, 26, ((8601, 8626),)),
    ("3905", "TØNSBERG", "TØNSBERG", 59.267, 10.407, 58, ((3110, 3125),)),
    ("3907", "SANDEFJORD", "SANDEFJORD", 59.131, 10.217, 65, ((3210, 3236),)),
    ("3909", "LARVIK", "LARVIK", 59.053, 10.027, 48, ((3251, 3296),)),
    ("4003", "SKIEN", "SKIEN", 59.209, 9.609, 55, ((3701, 3736),)),
    ("4001", "PORSGRUNN", "PORSGRUNN", 59.140, 9.656, 37, ((3901, 3949),)),
    ("3403", "HAMAR", "HAMAR", 60.795, 11.068, 32, ((2301, 2326),)),
    ("3405", "LILLEHAMMER", "LILLEHAMMER", 61.115, 10.466, 29, ((2601, 2619),)),
    ("3407", "GJØVIK", "GJØVIK", 60.795, 10.692, 31, ((2801, 2827),)),
    ("3420", "ELVERUM", "ELVERUM", 60.881, 11.562, 21, ((2401, 2418),)),
    ("3411", "RINGSAKER", "BRUMUNDDAL", 60.881, 10.939, 35, ((2380, 2391),)),
    ("5006", "STEINKJER", "STEINKJER", 64.014, 11.495, 24, ((7701, 7739),)),
)
# Postcodes per kommune; every postcode belongs to one kommune only, so an address key
# (street line + postcode) never points at two kommuner.
KOMMUNE_POSTCODES: list[tuple[str, ...]] = [
    tuple(f"{code:04d}" for low, high in ranges for code in range(low, high + 1)) for *_, ranges in KOMMUNER
]
KOMMUNE_TABLE: list[int] = [i for i, k in enumerate(KOMMUNER) for _ in range(k[5])]
FYLKER: tuple[str, ...] = (
    "ØSTFOLD", "AKERSHUS", "BUSKERUD", "VESTFOLD", "TELEMARK", "INNLANDET", "AGDER", "ROGALAND", "VESTLAND",
    "TRØNDELAG", "NORDLAND", "TROMS", "FINNMARK", "MØRE OG ROMSDAL",
)

# (land, landkode, poststed with the postcode inside, street lines)
FOREIGN: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("Sverige", "SE", "11453 STOCKHOLM", ("Kungsgatan 12", "Birger Jarlsgatan 57", "Sveavägen 20")),
    ("Sverige", "SE", "41104 GÖTEBORG", ("Kungsportsavenyen 31", "Första Långgatan 4")),
    ("Danmark", "DK", "2100 KØBENHAVN Ø", ("Østerbrogade 44", "Nordre Frihavnsgade 7")),
    ("Tyskland", "DE", "10115 BERLIN", ("Friedrichstraße 45", "Invalidenstraße 112")),
    ("Tyskland", "DE", "20095 HAMBURG", ("Mönckebergstraße 7",)),
    ("Storbritannia", "GB", "LONDON EC1A 1BB", ("1 King Street", "Unit 4, 22 Old Street")),
    ("USA", "US", "NEW YORK, NY 10001", ("350 Fifth Avenue", "11 Madison Avenue")),
    ("Finland", "FI", "00100 HELSINKI", ("Mannerheimintie 14",)),
    ("Nederland", "NL", "1012 AB AMSTERDAM", ("Damrak 70", "Keizersgracht 123")),
    ("Polen", "PL", "00-001 WARSZAWA", ("ul. Marszalkowska 84",)),
    ("Litauen", "LT", "LT-01100 VILNIUS", ("Gedimino pr. 9",)),
    ("Spania", "ES", "29600 MARBELLA", ("Avenida Ricardo Soriano 22",)),
)

# -- words --------------------------------------------------------------------------------------
FIRST_NAMES: tuple[str, ...] = (
    "Ola", "Kari", "Per", "Anne", "Lars", "Ingrid", "Jon", "Marit", "Knut", "Liv", "Erik", "Hilde",
    "Magnus", "Silje", "Henrik", "Ingeborg", "Sander", "Nora", "Emil", "Sofie", "Jakob", "Emma",
    "Tobias", "Ida", "Mathias", "Thea", "Kristian", "Maria", "Andreas", "Julie", "Martin", "Sara",
    "Eirik", "Hanne", "Håkon", "Kristin", "Sindre", "Marte", "Vegard", "Tone", "Øyvind", "Gro",
    "Torbjørn", "Solveig", "Arne", "Randi", "Bjørn", "Berit", "Geir", "Turid", "Trond", "Heidi",
    "Rune", "Elin", "Stian", "Camilla", "Espen", "Linn", "Jørgen", "Åse", "Even", "Guro", "Audun",
    "Sigrid", "Eivind", "Ragnhild", "Sverre", "Astrid", "Odd", "Bente", "Helge", "Wenche", "Terje",
    "Mona", "Kjetil", "Unni", "Halvor", "Synnøve", "Torstein", "Aud", "Mohammed", "Fatima", "Piotr",
    "Agnieszka", "Tomas", "Aisha", "Ali", "Leila",
)
# Norwegian middle names are mostly family names ("Kari Lie Hansen").
MIDDLE_NAMES: tuple[str, ...] = (
    "Lie", "Berg", "Haugen", "Strand", "Moe", "Dahl", "Lund", "Vik", "Bakke", "Aas", "Holm", "Solberg",
)
SURNAMES: tuple[str, ...] = (
    "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Kristiansen", "Jensen",
    "Karlsen", "Johnsen", "Pettersen", "Eriksen", "Berg", "Haugen", "Hagen", "Johannessen", "Andreassen",
    "Jacobsen", "Dahl", "Jørgensen", "Halvorsen", "Henriksen", "Lund", "Sørensen", "Jakobsen", "Moen",
    "Gundersen", "Iversen", "Strand", "Solberg", "Svendsen", "Eide", "Knutsen", "Martinsen", "Paulsen",
    "Bakken", "Kristoffersen", "Mathisen", "Lie", "Amundsen", "Nguyen", "Rasmussen", "Lunde", "Solheim",
    "Berge", "Moe", "Nygård", "Bakke", "Kristensen", "Fredriksen", "Holm", "Lien", "Hauge", "Christensen",
    "Andresen", "Nielsen", "Knudsen", "Evensen", "Sæther", "Aas", "Myhre", "Hanssen", "Haugland",
    "Thomassen", "Sivertsen", "Simonsen", "Danielsen", "Berntsen", "Sandvik", "Rønning", "Arnesen",
    "Antonsen", "Næss", "Vik", "Haug", "Ellingsen", "Thorsen", "Edvardsen", "Birkeland", "Isaksen",
    "Gulbrandsen", "Ruud", "Aasen", "Strøm", "Myklebust", "Tangen", "Ødegård", "Eliassen", "Helland",
    "Bøe", "Aune", "Mikkelsen", "Tveit", "Brekke", "Abrahamsen", "Madsen", "Kowalski", "Nowak", "Hussain",
)
TRADES: tuple[str, ...] = (
    "BYGG", "ELEKTRO", "TRANSPORT", "EIENDOM", "HOLDING", "INVEST", "CONSULTING", "RØR", "MALING",
    "REGNSKAP", "SERVICE", "HANDEL", "DATA", "TEKNIKK", "MASKIN", "ANLEGG", "SNEKKERI", "FRISØR",
    "DESIGN", "MEDIA", "AUTO", "GÅRD", "SJØMAT", "VVS", "BETONG", "TAK", "GRAVING", "RENHOLD", "HELSE",
    "KLINIKK", "FYSIOTERAPI", "INTERIØR", "FOTO", "MUSIKK", "UTVIKLING", "SYSTEMER", "TEKNOLOGI",
    "ENERGI", "MARINE", "LOGISTIKK", "PARTNER", "GRUPPEN", "KAFÉ", "BAKERI", "EIENDOMSUTVIKLING",
)
ENK_TRADES: tuple[str, ...] = (
    "SNEKKER", "ELEKTRIKER", "MALERMESTER", "FRISØR", "RØRLEGGER", "TAXI", "TRANSPORT", "REGNSKAP",
    "FOTOGRAF", "KONSULENT", "GÅRDSDRIFT", "SKOGSDRIFT", "FYSIOTERAPEUT", "MUSIKER", "DESIGN", "RENHOLD",
)
WORDS: tuple[str, ...] = (
    "NORD", "SØR", "VEST", "ØST", "FJORD", "FJELL", "VIK", "NES", "LIA", "HAUG", "BERG", "NORDLYS",
    "POLAR", "ARKTISK", "KYST", "SKOG", "ELV", "STRAND", "MIDT", "HAV", "ASK", "BJØRK", "GRAN", "LINDE",
    "SOLSIDEN", "VARDE", "BAUTA", "NORRØN", "TIND", "BRE", "FOSS", "MOLO", "LOS", "KOMPASS", "ANKER",
    "FYR", "TUNET", "STABBUR", "HEI", "DAL", "ÅS", "NYBY", "SENTRUM", "SMART", "PRIMA", "OPTIMAL",
)
PLACE_STEMS: tuple[str, ...] = (
    "BJØRKE", "SKOG", "HAUGE", "NOR", "SØR", "LIN", "MYR", "FURU", "ÅS", "BERG", "EIK", "VIK", "HOLT",
    "SAND", "STEIN", "LUND", "RUD", "TVEIT",
)
PLACE_ENDS: tuple[str, ...] = (
    "LIA", "BY", "HEIM", "DAL", "VOLL", "STAD", "NES", "MO", "RUD", "HAUG", "SETER", "ÅSEN", "VIKA",
    "BAKKEN",
)
FOREIGN_WORDS: tuple[str, ...] = (
    "NORDIC", "BALTIC", "GLOBAL", "EURO", "ATLANTIC", "ALPHA", "OMEGA", "SVENSKA", "DANSK", "POLSKA",
    "MERIDIAN", "VERTEX", "NORTHERN", "BLUE OCEAN", "SCANDI",
)
FOREIGN_SUFFIXES: tuple[str, ...] = (
    "LTD", "GMBH", "AB", "OY", "APS", "SP. Z O.O.", "B.V.", "INC", "S.L.", "UAB",
)
FLI_KINDS: tuple[str, ...] = (
    "IDRETTSLAG", "SKYTTERLAG", "MUSIKKORPS", "SANITETSFORENING", "HISTORIELAG", "VELFORENING",
    "BRIDGEKLUBB", "SPORTSKLUBB", "SKOLEKORPS", "BYGDEKVINNELAG", "JEGER- OG FISKEFORENING", "FAU",
    "PENSJONISTFORENING", "UNGDOMSLAG", "MOTORKLUBB", "BÅTFORENING", "KOR", "FOTBALLKLUBB",
)
PUBLIC_DEPTS: tuple[str, ...] = (
    "HELSE OG OMSORG", "BARNEHAGE", "SKOLE", "TEKNISK ETAT", "NAV", "KULTUR", "BRANN OG REDNING",
    "PLAN OG BYGG", "SYKEHJEM", "BIBLIOTEK",
)
STREET_STEMS: tuple[str, ...] = (
    "Stor", "Kirke", "Skole", "Industri", "Hav", "Strand", "Bjørke", "Furu", "Eike", "Løvenskiold",
    "Fjord", "Sjø", "Kongens ", "Dronning ", "Nedre ", "Øvre ", "Torg", "Bryggen", "Jernbane", "Fabrikk",
    "Stasjons", "Møllen", "Solheim", "Lia", "Haug", "Berg", "Elve", "Skog", "Kvern", "Sag", "Prestegårds",
    "Gamle ", "Nye ", "Smie", "Tollbod", "Rådhus", "Park", "Hage", "Myr", "Sand",
)
STREET_ENDS: tuple[str, ...] = (
    "gata", "gate", "veien", "vegen", "bakken", "svingen", "lia", "plassen", "allé", "stien", "tunet",
    "kroken", "jordet", "brygga",
)
EXTRA_LINES: tuple[str, ...] = (
    "Inngang B", "2. etasje", "Bygg 3", "c/o Regnskapskontoret", "Næringsparken", "Postboks 44",
)
FORMAAL: tuple[str, ...] = (
    "Utleie av fast eiendom og annen virksomhet som naturlig henger sammen med dette, "
    "herunder deltakelse i andre selskaper.",
    "Investering i aksjer, andeler og andre finansielle instrumenter, samt utleie av fast eiendom.",
    "Drive handel og tjenesteyting, og alt som står i forbindelse med dette.",
    "Konsulentvirksomhet innen IT og rådgivning, samt deltakelse i andre selskaper med lignende formål.",
    "Bygg- og anleggsvirksomhet, herunder oppføring og rehabilitering av bygninger.",
    "Fremme idrett og fysisk aktivitet for barn, unge og voksne i nærmiljøet.",
    "Ivareta medlemmenes felles interesser og drive kulturelt arbeid i bygda.",
    "Skaffe andelseierne bolig ved å erverve, eie og drive boligeiendom.",
    "Forvalte sameiets fellesarealer og ivareta seksjonseiernes felles interesser.",
)
AKTIVITET: tuple[str, ...] = (
    "Snekker- og tømrerarbeid, samt", "mindre byggeoppdrag for private.",
    "Frisørvirksomhet og salg av hårpleieprodukter.", "Transport av gods med lastebil.",
    "Regnskapsføring og rådgivning", "for små bedrifter.", "Konsulenttjenester innen IT.",
    "Gårdsdrift med melkeproduksjon.", "Fotografering av portretter og arrangementer.",
    "Salg av varer via nettbutikk.",
)
SLUG_SUFFIXES: tuple[str, ...] = ("as", "norge", "gruppen", "bygg", "drift")
MAILBOXES: tuple[str, ...] = ("post", "kontakt", "firmapost", "info")
MAIL_PROVIDERS: tuple[str, ...] = ("gmail.com", "online.no", "hotmail.com", "outlook.com")
THIRD_PARTY_DOMAINS: tuple[str, ...] = (".wixsite.com", ".weebly.com", ".mystrikingly.com")
THIRD_PARTY: tuple[str, ...] = (
    "{s}.wixsite.com/{s}", "{s}.wixsite.com/{s}/", "{s}.weebly.com", "{s}.mystrikingly.com",
)
JUNK: tuple[str, ...] = ("www.|{s}.no", "www..{s}.no", "www.{s},no", "{s}", "www.{s} .no", "ikke aktuell")

_TRANSLIT = str.maketrans({
    "Æ": "ae", "Ø": "o", "Å": "a", "æ": "ae", "ø": "o", "å": "a",
    "É": "e", "é": "e", "Ö": "o", "ö": "o", "Ä": "a", "ä": "a",
})
_FORM_WORDS = frozenset((
    "AS", "ASA", "DA", "ANS", "SA", "NUF", "KS", "BA", "LTD", "GMBH", "AB", "OY", "APS", "INC", "UAB",
    "NORGE"),
)
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")


# -- dates ------------------------------------------------------------------------------------
_DAY0 = dt.date(1900, 1, 1).toordinal()
# Day strings by index from 1900-01-01, running past the dump date for change-feed dates.
DAYS: list[str] = [
    dt.date.fromordinal(_DAY0 + i).isoformat() for i in range(DUMP_DATE.toordinal() - _DAY0 + 3000)
]
DUMP_DAY = DUMP_DATE.toordinal() - _DAY0
REGISTER_START_DAY = dt.date(1995, 1, 2).toordinal() - _DAY0


# -- orgnr ------------------------------------------------------------------------------------
def _weighted_tables() -> tuple[list[int], list[int]]:
    # Weighted digit sums mod 11 for digits 2-4 (weights 2,7,6) and 5-7 (weights 5,4,3).
    high, low = [], []
    for n in range(1000):
        a, b, c = n // 100, n // 10 % 10, n % 10
        high.append((2 * a + 7 * b + 6 * c) % 11)
        low.append((5 * a + 4 * b + 3 * c) % 11)
    return high, low


class OrgnrSpace:
    """A bijection from entity serials to valid, unique, well spread organisation numbers.

    Serial g picks a first digit (mostly 9 or 8, a few percent 1-7), then an affine permutation
    of g over that digit's 9,000,000 slots: six more digits and one of the (at least nine)
    eighth digits whose check digit is not 10. Two serials never share a number because the
    permutation is injective and different first digits never meet.
    """

    SLOTS = 9_000_000
    MULTIPLIER = 5_562_329  # coprime with 9,000,000 (= 2^6 3^2 5^6) and far from its ends

    def __init__(self, seed: int, check_digit: Callable[[str], int | None]) -> None:
        self._offset = (seed * 2_654_435_761) % self.SLOTS
        self._high, self._low = _weighted_tables()
        self._eighth = self._tables(check_digit)

    @staticmethod
    def _tables(check_digit: Callable[[str], int | None]) -> list[list[tuple[int, int]]]:
        table: list[list[tuple[int, int]]] = [[] for _ in range(11)]
        for remainder in range(11):
            # Find any seven-digit prefix with this weighted remainder, then try its eighth digits.
            for probe in range(1_000_000, 1_100_000):
                text = f"{probe:07d}"
                if sum(int(c) * w for c, w in zip(text, (3, 2, 7, 6, 5, 4, 3))) % 11 == remainder:
                    break
            for d in range(10):
                check = check_digit(f"{text}{d}")
                if check is not None:
                    table[remainder].append((d, check))
        assert all(len(options) >= 9 for options in table)
        return table

    @staticmethod
    def first_digit(serial: int) -> int:
        bucket = (serial * 2_246_822_519 >> 11) % 1000
        if bucket < 590:
            return 9
        if bucket < 960:
            return 8
        return 1 + (bucket - 960) % 7

    def number(self, serial: int) -> str:
        if serial >= self.SLOTS:
            raise ValueError(f"serial {serial} is beyond the {self.SLOTS} numbers per first digit")
        first = self.first_digit(serial)
        t = (serial * self.MULTIPLIER + self._offset) % self.SLOTS
        stem, slot = divmod(t, 9)
        remainder = (3 * first + self._high[stem // 1000] + self._low[stem % 1000]) % 11
        eighth, check = self._eighth[remainder][slot]
        return f"{first}{stem:06d}{eighth}{check}"


# -- the unit factory -------------------------------------------------------------------------
class UnitFactory:
    """Draws units for one chunk from one random stream; remembers firms for later references."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.random = rng.random
        self.auditors: list[tuple[str, str]] = []  # (orgnr, navn) of AS firms doing audit/accounting
        self.public: list[str] = []  # orgnr of KOMM/STAT/FYLK units, parents for ORGL/ADOS

    # small draws; inlined index arithmetic is much cheaper than rng.choice
    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.random() * len(seq))]

    def person(self) -> tuple[str, str | None, str]:
        r = self.random
        middle = MIDDLE_NAMES[int(r() * len(MIDDLE_NAMES))] if r() < 0.18 else None
        return FIRST_NAMES[int(r() * len(FIRST_NAMES))], middle, SURNAMES[int(r() * len(SURNAMES))]

    def place(self) -> str:
        r = self.random
        return PLACE_STEMS[int(r() * len(PLACE_STEMS))] + PLACE_ENDS[int(r() * len(PLACE_ENDS))]

    def street_address(self, kidx: int, extra_lines: bool) -> Address:
        r = self.random
        name = STREET_STEMS[int(r() * len(STREET_STEMS))] + STREET_ENDS[int(r() * len(STREET_ENDS))]
        number = 1 + int(r() ** 2 * 120)
        letter = "ABCDE"[int(r() * 5)] if r() < 0.12 else ""
        first = f"{name} {number}{letter}"
        lines: tuple[str | None, ...] = (first,)
        if extra_lines:
            roll = r()
            if roll < 0.10:
                lines = (first, EXTRA_LINES[int(r() * len(EXTRA_LINES))])
            elif roll < 0.13:
                lines = (first, self.pick(EXTRA_LINES), self.pick(EXTRA_LINES))
            elif roll < 0.145:
                lines = (first, None) if roll < 0.1375 else (first, "")
        k = KOMMUNER[kidx]
        codes = KOMMUNE_POSTCODES[kidx]
        postcode = codes[int(r() * len(codes))]
        return (lines, postcode, k[2], k[1], k[0], "Norge", "NO", (name, number, letter), kidx)

    def post_box(self, kidx: int) -> Address:
        r = self.random
        k = KOMMUNER[kidx]
        codes = KOMMUNE_POSTCODES[kidx]
        lines: tuple[str | None, ...] = (f"Postboks {1 + int(r() * 9000)}",)
        if r() < 0.05:
            lines = (f"c/o {self.pick(SURNAMES)} Regnskap", lines[0])
        return (lines, codes[int(r() * len(codes))], k[2], k[1], k[0], "Norge", "NO", None, kidx)

    def foreign_address(self) -> Address:
        r = self.random
        land, code, poststed, streets = FOREIGN[int(r() * len(FOREIGN))]
        lines: tuple[str | None, ...] = (streets[int(r() * len(streets))],)
        if r() < 0.15:
            lines = (lines[0], "" if r() < 0.3 else "Suite 100")
        return (lines, None, poststed, None, None, land, code, None, -1)

    def kommune(self) -> int:
        return KOMMUNE_TABLE[int(self.random() * len(KOMMUNE_TABLE))]

    def name(self, form: str, kidx: int, person: tuple[str, str | None, str] | None) -> str:
        r = self.random
        pick = self.pick
        if form == "ENK" and person is not None:
            full = " ".join(p for p in person if p).upper()
            roll = r()
            if roll < 0.55:
                return full
            if roll < 0.8:
                return f"{pick(ENK_TRADES)} {full}"
            return f"{person[2].upper()} {pick(TRADES)} {full}"
        if form in ("AS", "ASA", "BA", "SF"):
            roll = r()
            head = pick(SURNAMES).upper() if roll < 0.4 else pick(WORDS)
            if roll > 0.9:
                head = f"{head} {pick(WORDS)}"
            return f"{head} {pick(TRADES)} {form}"
        if form == "FLI":
            roll = r()
            if roll < 0.75:
                return f"{self.place()} {pick(FLI_KINDS)}"
            return f"FORENINGEN {pick(WORDS)} {pick(TRADES)}"
        if form in ("BRL", "BBL"):
            return f"{self.place()} {'BORETTSLAG' if form == 'BRL' else 'BOLIGBYGGELAG'}"
        if form in ("ESEK", "SAM"):
            word = "EIERSEKSJONSSAMEIET" if r() < 0.4 else "SAMEIET"
            street = pick(STREET_STEMS).strip().upper() + pick(STREET_ENDS).upper()
            return f"{word} {street} {1 + int(r() * 90)}"
        if form == "UTLA":
            return f"{pick(FOREIGN_WORDS)} {pick(TRADES)} {pick(FOREIGN_SUFFIXES)}"
        if form == "NUF":
            tail = "NORGE NUF" if r() < 0.6 else "NORWEGIAN BRANCH"
            return f"{pick(FOREIGN_WORDS)} {pick(TRADES)} {pick(FOREIGN_SUFFIXES)} {tail}"
        if form in ("DA", "ANS", "KS"):
            if r() < 0.5:
                return f"{pick(SURNAMES).upper()} & {pick(SURNAMES).upper()} {form}"
            return f"{pick(WORDS)} {pick(TRADES)} {form}"
        if form == "KOMM":
            return f"{KOMMUNER[kidx][1]} KOMMUNE"
        if form in ("ORGL", "ADOS", "KF"):
            return f"{KOMMUNER[kidx][1]} KOMMUNE {pick(PUBLIC_DEPTS)}"
        if form == "FYLK":
            return f"{pick(FYLKER)} FYLKESKOMMUNE"
        if form == "STAT":
            return f"{pick(WORDS)}DIREKTORATET"
        if form == "STI":
            return f"STIFTELSEN {pick(WORDS)} {pick(FLI_KINDS)}"
        if form == "SPA":
            return f"SPAREBANKEN {self.place()}"
        if form == "KIRK":
            return f"{self.place()} SOKN"
        if form == "IKS":
            return f"{pick(WORDS)} {pick(TRADES)} IKS"
        if form == "SA":
            return f"{self.place()} SAMVIRKELAG SA"
        return f"{pick(WORDS)} {pick(TRADES)} {form}"

    def homepage(self, form: str, navn: str) -> str | None:
        r = self.random
        if r() >= HOMEPAGE_SHARE.get(form, 0.2):
            return None
        words = [w for w in navn.split() if w not in _FORM_WORDS and w.isalpha()] or ["firma"]
        slug = "".join(words[:2]).translate(_TRANSLIT).lower()
        if r() < 0.15 and len(words) > 1:
            slug = "-".join(words[:2]).translate(_TRANSLIT).lower()
        if not slug.isascii():
            slug = "".join(c for c in slug if c in _HOST_CHARS) or "firma"
        if r() < 0.35:
            slug += str(int(r() * 90) + 1) if r() < 0.5 else self.pick(SLUG_SUFFIXES)
        roll = r()
        if roll < 0.012:
            return self.pick(JUNK).format(s=slug)
        if roll < 0.05:
            return self.pick(THIRD_PARTY).format(s=slug)
        tld = ".no" if r() < 0.86 else self.pick((".com", ".net", ".org", ".eu", ".nu"))
        host = f"{slug}{tld}"
        if r() < 0.87:  # with the third-party and junk values this lands near 83% `www.`
            host = "www." + host
        roll = r()
        if roll < 0.05:
            host = host.upper() if r() < 0.3 else _mixed_case(host, words)
        roll = r()
        if roll < 0.05:
            return host + self.pick(("/no", "/hjem", "/index.html", "/nb/forside", "/home"))
        if roll < 0.09:
            return host + "/"
        return host

    def phone(self) -> str:
        r = self.random
        n = int(r() * 100_000_000)
        if r() < 0.5:
            n = 20_000_000 + n % 80_000_000 if r() < 0.5 else 40_000_000 + n % 10_000_000
        text = f"{n:08d}"
        roll = r()
        if roll < 0.55:
            return text
        if roll < 0.8:
            return f"{text[:2]} {text[2:4]} {text[4:6]} {text[6:]}"
        return f"+47 {text}"

    def mobile(self) -> str:
        r = self.random
        n = (4 if r() < 0.6 else 9) * 10_000_000 + int(r() * 10_000_000)
        return f"+47 {n}" if r() < 0.4 else str(n)

    def employees(self, form: str) -> tuple[bool, int | None]:
        r = self.random
        if r() >= EMPLOYER_SHARE.get(form, 0.4):
            return False, None
        if form in ("KOMM", "FYLK", "STAT"):
            return True, 300 + int(r() ** 2 * 40_000)
        if r() < 0.5:
            return True, None  # 1-4 employees: registered, but the count is withheld
        return True, min(5 + int(4.0 / max(1e-9, 1.0 - r()) ** 1.05) - 4, 25_000)

    def unit(self, orgnr: str, new_day: int | None = None) -> Unit:
        """One main unit; `new_day` dates a unit registered after the dump (change feed `Ny`)."""
        r = self.random
        form = FORM_TABLE[int(r() * 10_000)]
        kidx = self.kommune()
        person = self.person() if form == "ENK" else None
        navn = self.name(form, kidx, person)
        u: Unit = {"orgnr": orgnr, "form": form, "navn": navn, "kidx": kidx, "person": person}
        self._dates(u, form, new_day)
        self._addresses(u, form, kidx)
        self._industry(u, form)
        self._registers(u, form)
        har, count = self.employees(form)
        u["har"] = har
        u["ansatte"] = count
        if har:
            day = min(u["reg_day"] + int(r() * 2000), DUMP_DAY - 1 - int(r() * 40))
            u["ansatte_dag"] = DAYS[max(day, u["reg_day"])]
        hjemmeside = self.homepage(form, navn)
        if hjemmeside is not None:
            u["hjemmeside"] = hjemmeside
        self._contacts(u, hjemmeside)
        self._status(u, form)
        self._texts(u, form)
        self._side_plans(u, form, new_day is not None)
        if form in ("AS", "ASA") and self.random() < 0.01 and not u.get("konkurs"):
            trade = "REVISJON" if r() < 0.5 else "REGNSKAP"
            u["navn"] = navn = f"{self.pick(SURNAMES).upper()} {trade} {form}"
            u["nk1"] = "69.201" if "REVISJON" in navn else "69.202"
            self.auditors.append((orgnr, navn))
        if form in PUBLIC_PARENT_FORMS:
            self.public.append(orgnr)
        return u

    def _dates(self, u: Unit, form: str, new_day: int | None) -> None:
        r = self.random
        span = DUMP_DAY - 1 - REGISTER_START_DAY
        if new_day is not None:
            reg = new_day
        else:
            skew = 1.8 if form == "ENK" else 1.25
            reg = DUMP_DAY - 1 - int(span * r() ** skew)
        u["reg_day"] = reg
        if form == "ENK" and r() < 0.7:
            return
        if reg - REGISTER_START_DAY < 400 and r() < 0.6:
            stift = reg - int(r() * 30_000)  # older than the register itself
        else:
            stift = reg - int(r() * 40)
        u["stiftelsesdato"] = DAYS[max(stift, 0)]

    def _addresses(self, u: Unit, form: str, kidx: int) -> None:
        r = self.random
        if form == "UTLA" or (form == "NUF" and r() < 0.4):
            u["forr"] = self.foreign_address()
            if form == "NUF" or r() < 0.2:
                u["post"] = self.post_box(kidx) if form == "NUF" else self.foreign_address()
            return
        roll = r()
        if form == "FLI" and roll < 0.4:
            u["post"] = self.street_address(kidx, True) if roll < 0.25 else self.post_box(kidx)
            return
        if roll < 0.015 and form not in PUBLIC_FORMS:
            u["post"] = self.street_address(kidx, True)
            return
        u["forr"] = self.street_address(kidx, True)
        roll = r()
        if roll < 0.2:
            u["post"] = self.post_box(kidx)
        elif roll < 0.23:
            u["post"] = self.foreign_address()

    def _industry(self, u: Unit, form: str) -> None:
        r = self.random
        if r() >= (0.97 if form in ("ENK", "AS") else 0.8):
            return
        pool = NACE_BY_FORM.get(form, _NACE_AS)
        code = pool[int(r() * len(pool))]
        if r() < 0.04:
            code = SN2007_CODES[int(r() * len(SN2007_CODES))]
        u["nk1"] = code
        if r() < 0.08:
            second = pool[int(r() * len(pool))]
            if second != code:
                u["nk2"] = second
                third = _NACE_AS[int(r() * len(_NACE_AS))]
                if r() < 0.2 and third not in (code, second):
                    u["nk3"] = third
        sector = FORM_SECTOR.get(form, "2100")
        if form == "AS" and r() < 0.01:
            sector = "1120"
        if r() < 0.95:
            u["sektor"] = sector

    def _registers(self, u: Unit, form: str) -> None:
        r = self.random
        reg = u["reg_day"]
        mva_share = MVA_SHARE.get(form, 0.3)
        u["mva"] = mva = r() < mva_share
        if mva:
            u["mva_dag"] = DAYS[min(reg + int(r() * 60), DUMP_DAY - 1)]
        fr = form in ENTERPRISE_FORMS or (form == "ENK" and r() < 0.3)
        u["fr"] = fr
        if fr:
            u["fr_dag"] = DAYS[min(reg + int(r() * 10), DUMP_DAY - 1)]
        u["stiftreg"] = form == "STI"
        u["friv"] = friv = form in ("FLI", "STI") and r() < 0.35
        if friv:
            u["friv_dag"] = DAYS[min(reg + int(r() * 700), DUMP_DAY - 1)]
        u["parti"] = form == "FLI" and r() < 0.002

    def _contacts(self, u: Unit, hjemmeside: str | None) -> None:
        r = self.random
        if r() < 0.2:
            host = homepage_host(hjemmeside) if hjemmeside else None
            if host and not host.endswith(THIRD_PARTY_DOMAINS):
                u["epost"] = f"post@{host.removeprefix('www.')}"
            else:
                local = u["navn"].split()[0].translate(_TRANSLIT).lower()
                local = "".join(c for c in local if c in _HOST_CHARS) or "post"
                u["epost"] = f"{local}{int(r() * 99)}@{self.pick(MAIL_PROVIDERS)}"
        if r() < 0.25:
            u["telefon"] = self.phone()
        if r() < 0.25:
            u["mobil"] = self.mobile()

    def _status(self, u: Unit, form: str) -> None:
        r = self.random
        roll = r()
        reg = u["reg_day"]
        if roll < 0.006 and form not in PUBLIC_FORMS:
            u["konkurs"] = True
            u["konkursdato"] = DAYS[max(reg, DUMP_DAY - 1 - int(r() * 1500))]
        elif roll < 0.014:
            u["avvikling"] = True
            u["avvikling_dag"] = DAYS[max(reg, DUMP_DAY - 1 - int(r() * 700))]
        elif roll < 0.017 and form in ("AS", "ASA", "NUF"):
            u["tvang"] = True
        u["maal"] = "Nynorsk" if r() < 0.08 else "Bokmål"
        if form in ("ORGL", "ADOS", "KF") and self.public:
            u["overordnet"] = self.public[int(r() * len(self.public))]
        u["konsern"] = r() < GROUP_SHARE.get(form, 0.0)

    def _texts(self, u: Unit, form: str) -> None:
        r = self.random
        share = PURPOSE_SHARE.get(form, 0.0)
        if r() < share:
            first = FORMAAL[int(r() * len(FORMAAL))]
            u["formaal"] = (first,) if r() < 0.8 else (first, FORMAAL[int(r() * len(FORMAAL))])
            u["vedtektsdato"] = DAYS[min(u["reg_day"] + int(r() * 3000), DUMP_DAY - 1)]
        if form in ("ENK", "NUF", "DA", "ANS") and r() < 0.7:
            start = int(r() * (len(AKTIVITET) - 2))
            u["aktivitet"] = tuple(AKTIVITET[start : start + 1 + int(r() * 3)])
        if form in ("AS", "ASA") and r() < 0.6:
            if form == "ASA":
                belop = float(1_000_000 + int(r() * 8_000_000))
            else:
                belop = (30000.0, 30000.0, 50000.0, 100000.0, 200000.0, 1000000.0)[int(r() * 6)]
            shares = int(belop / (1, 10, 100)[int(r() * 3)])
            u["kapital"] = (belop, shares, DAYS[min(u["reg_day"] + int(r() * 2000), DUMP_DAY - 1)])
        if form == "NUF" and r() < 0.7:
            u["hjemland_nr"] = f"{int(r() * 900_000) + 100_000}-{int(r() * 9000) + 1000}"
        if r() < (0.05 if form == "AS" else 0.02):
            old = self.name(form, u["kidx"], self.person() if form == "ENK" else None)
            to_day = max(min(u["reg_day"] + 1 + int(r() * 4000), DUMP_DAY - 2), u["reg_day"])
            u["historiske"] = ((old, u["reg_day"], to_day, int(r() * 86_400)),)

    def _side_plans(self, u: Unit, form: str, is_new: bool) -> None:
        """What else the registers know about the unit: roles, accounts, sub-units."""
        r = self.random
        u["roles"] = r() >= (0.7 if form == "UTLA" else 0.035)
        u["acc_years"] = 0
        share = ACCOUNT_FILERS.get(form, 0.0)
        if not is_new and share and u["reg_day"] < DUMP_DAY - 400 and r() < share:
            u["acc_years"] = 1 + int(r() * 3)
            u["acc_last"] = 2025 if r() < 0.8 else 2024
            u["siste"] = str(u["acc_last"])
        u["nsub"] = 0 if is_new else self._subunit_count(form)

    def _subunit_count(self, form: str) -> int:
        r = self.random
        roll = r()
        if form == "AS" or form == "ASA":
            if form == "ASA" or roll < 0.004:
                return 10 + int(r() ** 2 * 300)
            if roll < 0.03:
                return 3 + int(r() * 8)
            if roll < 0.12:
                return 2
            return 1 if roll < 0.40 else 0
        if form == "KOMM" or form == "FYLK" or form == "STAT":
            return 40 + int(r() * 260)
        if form == "NUF":
            return 1 if roll < 0.8 else 0
        if form in ("ENK", "FLI", "DA", "ANS", "SA", "STI", "ORGL", "KF", "IKS", "SPA", "KIRK"):
            return (1 if roll < 0.2 else 0) + (2 if roll < 0.01 else 0)
        return 0


def _mixed_case(host: str, words: list[str]) -> str:
    # "www.BakkenBygg.no": capitalise the name words inside the host, as people type them.
    out = host
    for word in words[:2]:
        lower = word.translate(_TRANSLIT).lower()
        out = out.replace(lower, lower.capitalize(), 1)
    return out if out != host else host.capitalize()


def homepage_host(value: str) -> str | None:
    """The lower-case host of a `hjemmeside` value, or None for junk no browser would open."""
    host = value.strip().split("/", 1)[0].lower()
    if not host or not set(host) <= _HOST_CHARS or "." not in host:
        return None
    labels = host.split(".")
    if any(not label or label.startswith("-") or label.endswith("-") for label in labels):
        return None
    return host if labels[-1].isalpha() and len(labels[-1]) >= 2 else None


# -- rendering: the dump's Jackson text ---------------------------------------------------------
_BOOL = {True: "true", False: "false"}


class _Style:
    """Text pieces for one JSON layout: Jackson's pretty dump, or the API's compact body.

    Both layouts come from one renderer, so the dump and units.jsonl cannot drift apart.
    """

    def __init__(self, pretty: bool) -> None:
        kv = '" : ' if pretty else '":'
        self.pretty = pretty
        self.key: dict[str, str] = {name: '"' + name + kv for name in _UNIT_KEYS}
        self.open, self.sep, self.close = ("{\n  ", ",\n  ", "\n}") if pretty else ("{", ",", "}")
        self.list_open, self.list_sep, self.list_close = ("[ ", ", ", " ]") if pretty else ("[", ",", "]")
        self.form = {code: self.key["organisasjonsform"] + self.obj(
            [("kode", _str(code)), ("beskrivelse", _str(text)), self._links("organisasjonsformer/" + code)])
            for code, text, _ in FORMS}
        self.nace = {code: self._code(code, text) for code, text in NACE.items()}
        sector_key = self.key["institusjonellSektorkode"]
        self.sector = {code: sector_key + self._code(code, text) for code, text in SECTORS.items()}
        self.bool = {True: "true", False: "false"}
        # %-templates: addresses are the most frequent nested objects
        self._address = self.obj([
            ("land", '"Norge"'), ("landkode", '"NO"'), ("postnummer", '"%s"'), ("poststed", '"%s"'),
            ("adresse", "%s"), ("kommune", '"%s"'), ("kommunenummer", '"%s"'),
        ])
        self._foreign_address = self.obj([
            ("land", '"%s"'), ("landkode", '"%s"'), ("poststed", '"%s"'), ("adresse", "%s"),
        ])
        links = self.key["_links"] + '{"self":{"href":"' + BRREG_API + '/enheter/%s"}}'
        self._tail = self.key["respons_klasse"] + '"Enhet"' + self.sep + (
            self.key["links"] + "[ ]" if pretty else links
        ) + self.close

    def _code(self, code: str, text: str) -> str:
        return self.obj([("kode", _str(code)), ("beskrivelse", _str(text))])

    def _links(self, path: str) -> tuple[str, str]:
        if self.pretty:
            return ("links", "[ ]")
        return ("_links", '{"self":{"href":"' + BRREG_API + "/" + path + '"}}')

    def obj(self, pairs: list[tuple[str, str]]) -> str:
        """A nested object one level down (Jackson indents its fields by four spaces)."""
        if self.pretty:
            return "{\n    " + ",\n    ".join('"%s" : %s' % pair for pair in pairs) + "\n  }"
        return "{" + ",".join('"%s":%s' % pair for pair in pairs) + "}"

    def strings(self, values: Sequence[str | None]) -> str:
        if len(values) == 1 and values[0] is not None:
            return self.list_open + '"' + values[0] + '"' + self.list_close
        items = self.list_sep.join("null" if v is None else '"' + v + '"' for v in values)
        return self.list_open + items + self.list_close

    def address(self, a: Address) -> str:
        if a[1] is None:
            return self._foreign_address % (a[5], a[6], a[2], self.strings(a[0]))
        return self._address % (a[1], a[2], self.strings(a[0]), a[3], a[4])

    def history(self, entries: tuple[tuple[str, int, int, int], ...]) -> str:
        items = []
        for navn, from_day, to_day, seconds in entries:
            clock = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
            items.append(self.obj([("navn", _str(navn)), ("fraDato", _str(DAYS[from_day] + " 00:00:00")),
                                   ("tilDato", _str(DAYS[to_day] + " " + clock))]))
        return self.list_open + self.list_sep.join(items) + self.list_close

    def kapital(self, kapital: tuple[float, int, str]) -> str:
        belop, shares, day = kapital
        return self.obj([("belop", repr(belop)), ("antallAksjer", str(shares)), ("type", '"Aksjekapital"'),
                         ("valuta", '"NOK"'), ("innfortDato", _str(day))])

    def tail(self, orgnr: str) -> str:
        return self._tail % orgnr if not self.pretty else self._tail


def _str(value: str) -> str:
    return '"' + value + '"'


_UNIT_KEYS = (
    "organisasjonsnummer", "navn", "organisasjonsform", "hjemmeside", "epostadresse", "telefon", "mobil",
    "postadresse", "registreringsdatoEnhetsregisteret", "registrertIMvaregisteret",
    "registreringsdatoMerverdiavgiftsregisteret", "naeringskode1", "naeringskode2", "naeringskode3", "antallAnsatte",
    "harRegistrertAntallAnsatte", "registreringsdatoAntallAnsatteEnhetsregisteret",
    "registreringsdatoAntallAnsatteNAVAaregisteret", "overordnetEnhet", "forretningsadresse", "stiftelsesdato",
    "institusjonellSektorkode", "registrertIForetaksregisteret", "registreringsdatoForetaksregisteret",
    "registrertIStiftelsesregisteret", "registrertIFrivillighetsregisteret", "registreringsdatoFrivillighetsregisteret",
    "registrertIPartiregisteret", "sisteInnsendteAarsregnskap", "konkurs", "konkursdato", "underAvvikling",
    "underAvviklingDato", "underTvangsavviklingEllerTvangsopplosning", "maalform", "vedtektsdato",
    "vedtektsfestetFormaal", "aktivitet", "registreringsnummerIHjemlandet", "erIKonsern", "kapital", "historiskeNavn",
    "respons_klasse", "links", "_links",
)
PRETTY = _Style(pretty=True)
COMPACT = _Style(pretty=False)
_OPTIONAL_TEXT = (
    ("hjemmeside", "hjemmeside"), ("epost", "epostadresse"), ("telefon", "telefon"), ("mobil", "mobil"),
)


def render_unit(u: Unit, s: _Style) -> str:
    """The unit in style `s`: PRETTY is one element of the `/lastned` array exactly as Jackson's
    pretty printer writes it (`"links" : [ ]`); COMPACT is the `/enheter/{orgnr}` body (`_links`)."""
    k = s.key
    b = s.bool
    get = u.get
    p = [k["organisasjonsnummer"] + '"' + u["orgnr"] + '"', k["navn"] + '"' + u["navn"] + '"']
    p.append(s.form[u["form"]])
    for field, key in _OPTIONAL_TEXT:
        if field in u:
            p.append(k[key] + '"' + u[field] + '"')
    if "post" in u:
        p.append(k["postadresse"] + s.address(u["post"]))
    p.append(k["registreringsdatoEnhetsregisteret"] + '"' + DAYS[u["reg_day"]] + '"')
    p.append(k["registrertIMvaregisteret"] + b[u["mva"]])
    if "mva_dag" in u:
        p.append(k["registreringsdatoMerverdiavgiftsregisteret"] + '"' + u["mva_dag"] + '"')
    if "nk1" in u:
        p.append(k["naeringskode1"] + s.nace[u["nk1"]])
        if "nk2" in u:
            p.append(k["naeringskode2"] + s.nace[u["nk2"]])
            if "nk3" in u:
                p.append(k["naeringskode3"] + s.nace[u["nk3"]])
    count = get("ansatte")
    if count is not None:
        p.append(k["antallAnsatte"] + str(count))
    p.append(k["harRegistrertAntallAnsatte"] + b[u["har"]])
    if "ansatte_dag" in u:
        day = '"' + u["ansatte_dag"] + '"'
        p.append(k["registreringsdatoAntallAnsatteEnhetsregisteret"] + day)
        p.append(k["registreringsdatoAntallAnsatteNAVAaregisteret"] + day)
    if "overordnet" in u:
        p.append(k["overordnetEnhet"] + '"' + u["overordnet"] + '"')
    if "forr" in u:
        p.append(k["forretningsadresse"] + s.address(u["forr"]))
    if "stiftelsesdato" in u:
        p.append(k["stiftelsesdato"] + '"' + u["stiftelsesdato"] + '"')
    if "sektor" in u:
        p.append(s.sector[u["sektor"]])
    p.append(k["registrertIForetaksregisteret"] + b[u["fr"]])
    if "fr_dag" in u:
        p.append(k["registreringsdatoForetaksregisteret"] + '"' + u["fr_dag"] + '"')
    p.append(k["registrertIStiftelsesregisteret"] + b[u["stiftreg"]])
    p.append(k["registrertIFrivillighetsregisteret"] + b[u["friv"]])
    if "friv_dag" in u:
        p.append(k["registreringsdatoFrivillighetsregisteret"] + '"' + u["friv_dag"] + '"')
    p.append(k["registrertIPartiregisteret"] + b[u["parti"]])
    if "siste" in u:
        p.append(k["sisteInnsendteAarsregnskap"] + '"' + u["siste"] + '"')
    p.append(k["konkurs"] + b[get("konkurs", False)])
    if "konkursdato" in u:
        p.append(k["konkursdato"] + '"' + u["konkursdato"] + '"')
    p.append(k["underAvvikling"] + b[get("avvikling", False)])
    if "avvikling_dag" in u:
        p.append(k["underAvviklingDato"] + '"' + u["avvikling_dag"] + '"')
    p.append(k["underTvangsavviklingEllerTvangsopplosning"] + b[get("tvang", False)])
    p.append(k["maalform"] + '"' + u["maal"] + '"')
    if "formaal" in u:
        p.append(k["vedtektsdato"] + '"' + u["vedtektsdato"] + '"')
        p.append(k["vedtektsfestetFormaal"] + s.strings(u["formaal"]))
    if "aktivitet" in u:
        p.append(k["aktivitet"] + s.strings(u["aktivitet"]))
    if "hjemland_nr" in u:
        p.append(k["registreringsnummerIHjemlandet"] + '"' + u["hjemland_nr"] + '"')
    p.append(k["erIKonsern"] + b[u["konsern"]])
    if "kapital" in u:
        p.append(k["kapital"] + s.kapital(u["kapital"]))
    if "historiske" in u:
        p.append(k["historiskeNavn"] + s.history(u["historiske"]))
    return s.open + s.sep.join(p) + s.sep + s.tail(u["orgnr"])


def render_dump(u: Unit) -> str:
    return render_unit(u, PRETTY)


def render_api(u: Unit) -> str:
    return render_unit(u, COMPACT)


def render_deleted(orgnr: str, day: str) -> str:
    return (
        '{"organisasjonsnummer":"%s","slettedato":"%s","respons_klasse":"SlettetEnhet",'
        '"_links":{"self":{"href":"%s/enheter/%s"}}}' % (orgnr, day, BRREG_API, orgnr)
    )


def render_removed(orgnr: str, day: str) -> str:
    return '{"organisasjonsnummer":"%s","slettedato":"%s","_links":{"self":{"href":"%s/enheter/%s"}}}' % (
        orgnr, day, BRREG_API, orgnr)


# -- rendering: the CSV dump ------------------------------------------------------------------
CSV_COLUMNS: tuple[str, ...] = (
    "organisasjonsnummer", "navn", "organisasjonsform.kode", "organisasjonsform.beskrivelse",
    "naeringskode1.kode", "naeringskode1.beskrivelse", "naeringskode2.kode", "naeringskode2.beskrivelse",
    "naeringskode3.kode", "naeringskode3.beskrivelse", "hjelpeenhetskode.kode", "hjelpeenhetskode.beskrivelse",
    "harRegistrertAntallAnsatte", "antallAnsatte", "registreringsdatoAntallAnsatteEnhetsregisteret",
    "registreringsdatoAntallAnsatteNAVAaregisteret", "hjemmeside", "epostadresse", "telefon", "mobil",
    "postadresse.adresse", "postadresse.poststed", "postadresse.postnummer", "postadresse.kommune",
    "postadresse.kommunenummer", "postadresse.land", "postadresse.landkode",
    "forretningsadresse.adresse", "forretningsadresse.poststed", "forretningsadresse.postnummer",
    "forretningsadresse.kommune", "forretningsadresse.kommunenummer", "forretningsadresse.land",
    "forretningsadresse.landkode", "institusjonellSektorkode.kode", "institusjonellSektorkode.beskrivelse",
    "sisteInnsendteAarsregnskap", "registreringsdatoenhetsregisteret", "stiftelsesdato",
    "registrertIMvaRegisteret", "registreringsdatoMerverdiavgiftsregisteret",
    "registreringsdatoMerverdiavgiftsregisteretEnhetsregisteret", "frivilligMvaRegistrertBeskrivelser",
    "registreringsdatoFrivilligMerverdiavgiftsregisteret", "registrertIFrivillighetsregisteret",
    "registreringsdatoFrivillighetsregisteret", "registrertIForetaksregisteret",
    "registreringsdatoForetaksregisteret", "registrertIStiftelsesregisteret", "registrertIPartiregisteret",
    "registreringsdatoPartiregisteret", "konkurs", "konkursdato", "underAvvikling", "underAvviklingDato",
    "underTvangsavviklingEllerTvangsopplosning", "tvangsavvikletPgaManglendeSlettingDato",
    "tvangsopplostPgaManglendeDagligLederDato", "tvangsopplostPgaManglendeRevisorDato",
    "tvangsopplostPgaManglendeRegnskapDato", "tvangsopplostPgaMangelfulltStyreDato", "overordnetEnhet",
    "maalform", "vedtektsdato", "vedtektsfestetFormaal", "aktivitet", "registreringsnummerIHjemlandet",
    "paategninger", "erIKonsern", "kapital.belop", "kapital.antallAksjer", "kapital.type", "kapital.valuta",
    "kapital.innfortDato", "kapital.fulltInnbetaltBelop", "kapital.bundetKapital",
    "kapital.sakkyndigRedegjorelse", "kapital.overkursfond", "utenlandskRegister.navn",
    "utenlandskRegister.adresse.land", "utenlandskRegister.adresse.landkode",
    "utenlandskRegister.adresse.poststed", "utenlandskRegister.adresse.adresse", "hjemland.kode",
    "hjemland.beskrivelse", "frivilligRegistrertIMvaregisteret", "registrertIRegnskapsregisteret",
    "sistEndretAntallAnsatte", "ansvarsbegrensning", "registreringsdatoVedtekter", "respons_klasse.versjon",
)
_COL = {name: i for i, name in enumerate(CSV_COLUMNS)}
_EMPTY_ROW = [""] * len(CSV_COLUMNS)
CSV_HEADER = '"' + '","'.join(CSV_COLUMNS) + '"\n'


def _csv_address(row: list[str], prefix: int, a: Address) -> None:
    # adresse, poststed, postnummer, kommune, kommunenummer, land, landkode in column order
    row[prefix] = "/n".join(line or "" for line in a[0])
    row[prefix + 1] = a[2]
    if a[1] is not None:
        row[prefix + 2] = a[1]
        row[prefix + 3] = a[3]
        row[prefix + 4] = a[4]
    row[prefix + 5] = a[5]
    row[prefix + 6] = a[6]


_C = _COL
_C_POST, _C_FORR = _C["postadresse.adresse"], _C["forretningsadresse.adresse"]


def render_csv(u: Unit) -> str:
    """The unit as one CSV dump row: every field quoted, booleans as words, lines joined by `/n`."""
    row = _EMPTY_ROW.copy()
    get = u.get
    row[0] = u["orgnr"]
    row[1] = u["navn"]
    form = u["form"]
    row[2] = form
    row[3] = FORM_NAMES[form]
    if "nk1" in u:
        row[4] = u["nk1"]
        row[5] = NACE[u["nk1"]]
        if "nk2" in u:
            row[6] = u["nk2"]
            row[7] = NACE[u["nk2"]]
            if "nk3" in u:
                row[8] = u["nk3"]
                row[9] = NACE[u["nk3"]]
    row[12] = _BOOL[u["har"]]
    if u["ansatte"] is not None:
        row[13] = str(u["ansatte"])
    if "ansatte_dag" in u:
        row[14] = row[15] = u["ansatte_dag"]
    row[16] = get("hjemmeside", "")
    row[17] = get("epost", "")
    row[18] = get("telefon", "")
    row[19] = get("mobil", "")
    if "post" in u:
        _csv_address(row, _C_POST, u["post"])
    if "forr" in u:
        _csv_address(row, _C_FORR, u["forr"])
    if "sektor" in u:
        row[34] = u["sektor"]
        row[35] = SECTORS[u["sektor"]]
    row[36] = get("siste", "")
    row[37] = DAYS[u["reg_day"]]
    row[38] = get("stiftelsesdato", "")
    row[39] = _BOOL[u["mva"]]
    row[40] = get("mva_dag", "")
    row[44] = _BOOL[u["friv"]]
    row[45] = get("friv_dag", "")
    row[46] = _BOOL[u["fr"]]
    row[47] = get("fr_dag", "")
    row[48] = _BOOL[u["stiftreg"]]
    row[49] = _BOOL[u["parti"]]
    row[51] = _BOOL[get("konkurs", False)]
    row[52] = get("konkursdato", "")
    row[53] = _BOOL[get("avvikling", False)]
    row[54] = get("avvikling_dag", "")
    row[55] = _BOOL[get("tvang", False)]
    row[61] = get("overordnet", "")
    row[62] = u["maal"]
    if "formaal" in u:
        row[63] = u["vedtektsdato"]
        row[64] = "/n".join(u["formaal"])
    if "aktivitet" in u:
        row[65] = "/n".join(u["aktivitet"])
    row[66] = get("hjemland_nr", "")
    row[68] = _BOOL[u["konsern"]]
    if "kapital" in u:
        belop, shares, day = u["kapital"]
        row[69] = repr(belop)
        row[70] = str(shares)
        row[71] = "Aksjekapital"
        row[72] = "NOK"
        row[73] = day
    return '"' + '","'.join(row) + '"\n'


def _check_csv_positions() -> None:
    # The fixed indices above are the header positions; fail at import if either side moves.
    expected = {
        4: "naeringskode1.kode", 12: "harRegistrertAntallAnsatte", 16: "hjemmeside",
        34: "institusjonellSektorkode.kode", 36: "sisteInnsendteAarsregnskap",
        37: "registreringsdatoenhetsregisteret", 39: "registrertIMvaRegisteret",
        44: "registrertIFrivillighetsregisteret", 46: "registrertIForetaksregisteret",
        48: "registrertIStiftelsesregisteret",
        51: "konkurs", 55: "underTvangsavviklingEllerTvangsopplosning", 61: "overordnetEnhet", 62: "maalform",
        63: "vedtektsdato", 66: "registreringsnummerIHjemlandet", 68: "erIKonsern", 69: "kapital.belop",
        73: "kapital.innfortDato",
    }
    for index, name in expected.items():
        assert CSV_COLUMNS[index] == name, (index, name)


_check_csv_positions()


# -- side records -----------------------------------------------------------------------------
_ROLE_NAMES = {
    "DAGL": "Daglig leder/ adm.direktør", "STYR": "Styre", "REVI": "Revisor", "REGN": "Regnskapsfører",
    "INNH": "Innehaver", "KONT": "Kontaktperson", "DTPR": "Deltakere med delt ansvar",
    "DTSO": "Deltakere med solidarisk ansvar", "KOMP": "Komplementar", "EIKM": "Eierkommune",
    "LEDE": "Styrets leder", "NEST": "Nestleder", "MEDL": "Styremedlem", "VARA": "Varamedlem",
}
_TYPE = {code: '{"kode":"%s","beskrivelse":"%s"}' % (code, text) for code, text in _ROLE_NAMES.items()}
_TYPE["DAGL_ROLE"] = '{"kode":"DAGL","beskrivelse":"Daglig leder"}'
_TYPE["DTPR_ROLE"] = '{"kode":"DTPR","beskrivelse":"Deltaker med delt ansvar"}'
_TYPE["DTSO_ROLE"] = '{"kode":"DTSO","beskrivelse":"Deltaker med solidarisk ansvar"}'
_FORM_API = {
    code: '{"kode":"%s","beskrivelse":"%s","_links":{"self":{"href":"%s/organisasjonsformer/%s"}}}'
    % (code, text, BRREG_API, code)
    for code, text, _ in FORMS
}
_SUB_FORMS = {
    "BEDR": '{"kode":"BEDR","beskrivelse":"Underenhet til næringsdrivende og offentlig forvaltning",'
    '"_links":{"self":{"href":"%s/organisasjonsformer/BEDR"}}}' % BRREG_API,
    "AAFY": '{"kode":"AAFY","beskrivelse":"Underenhet til ikke-næringsdrivende",'
    '"_links":{"self":{"href":"%s/organisasjonsformer/AAFY"}}}' % BRREG_API,
}
_NACE_API = {code: '{"kode":"%s","beskrivelse":"%s"}' % (code, text) for code, text in NACE.items()}
# The subunits.jsonl line starts with its keys, then the `/underenheter/{orgnr}` record.
_SUBUNIT_HEAD = (
    '{"organisasjonsnummer":"%s","overordnetEnhet":"%s","record":{"organisasjonsnummer":"%s","navn":"%s",'
    '"organisasjonsform":%s,"registreringsdatoEnhetsregisteret":"%s","registrertIMvaregisteret":%s,'
    '"naeringskode1":%s'
)
_VALGT_AV = ',"valgtAv":{"kode":"AANS","beskrivelse":"Valgt av ansatte"}'
_GROUP = '{"type":%s,"sistEndret":"%s","roller":[%s]}'
_ROLES = '{"rollegrupper":[%s],"_links":{"self":{"href":"%s/enheter/%s/roller"}}}'
MANAGED_FORMS = frozenset({"AS", "ASA", "NUF", "SA", "STI", "SPA", "KF", "IKS", "SF", "BA"})
CONTACT_FORMS = frozenset({"KOMM", "STAT", "FYLK", "UTLA", "ORGL", "ADOS"})
AUDITED_FORMS = frozenset({"AS", "ASA", "SA", "STI", "NUF", "BRL", "SPA"})


# One Regnskapsregisteret filing. `regnkapsprinsipper` and `sumInnskuttEgenkaptial` are
# upstream typos, kept because clients must read the real names.
_FILING = (
    '{"id":%(id)d,"journalnr":"%(journal)s","regnskapstype":"%(kind)s","virksomhet":{"organisasjonsnummer":'
    '"%(orgnr)s","organisasjonsform":"%(form)s","morselskap":%(parent)s},"regnskapsperiode":'
    '{"fraDato":"%(year)d-01-01","tilDato":"%(year)d-12-31"},"valuta":"%(currency)s","avviklingsregnskap":false,'
    '"oppstillingsplan":"%(plan)s","revisjon":{"ikkeRevidertAarsregnskap":%(unaudited)s,'
    '"fravalgRevisjon":%(unaudited)s},"regnkapsprinsipper":{"smaaForetak":%(small)s,'
    '"regnskapsregler":"regnskapslovenAlminneligRegler"},"egenkapitalGjeld":{"sumEgenkapitalGjeld":%(assets)d,'
    '"egenkapital":{"sumEgenkapital":%(equity)d,"opptjentEgenkapital":{"sumOpptjentEgenkapital":%(earned)d},'
    '"innskuttEgenkapital":{"sumInnskuttEgenkaptial":%(paid_in)d}},"gjeldOversikt":{"sumGjeld":%(debt)d,'
    '"kortsiktigGjeld":{"sumKortsiktigGjeld":%(short_debt)d},"langsiktigGjeld":{"sumLangsiktigGjeld":%(long_debt)d}}},'
    '"eiendeler":{"sumEiendeler":%(assets)d,"omloepsmidler":{"sumOmloepsmidler":%(current)d},'
    '"anleggsmidler":{"sumAnleggsmidler":%(fixed)d}},"resultatregnskapResultat":'
    '{"ordinaertResultatFoerSkattekostnad":%(before_tax)d,"aarsresultat":%(result)d,"totalresultat":%(result)d,'
    '"finansresultat":{"nettoFinans":%(net_fin)d,"finansinntekt":{"sumFinansinntekter":%(fin_in)d},'
    '"finanskostnad":{"sumFinanskostnad":%(fin_cost)d}},"driftsresultat":{"driftsresultat":%(operating)d,'
    '%(income_part)s"driftskostnad":{"sumDriftskostnad":%(costs)d}}}}'
)


def _balance(r: Callable[[], float], size: float, holding: bool) -> dict[str, Any]:
    """Figures that add up: assets = equity + debt, result = operating + finance less tax.

    Holding companies report no operating income at all: `"driftsinntekter": {}`.
    """
    assets = int(size)
    equity = int(assets * (r() * 0.9 - 0.1))
    debt = assets - equity
    short_debt = int(debt * r())
    fixed = int(assets * r())
    paid_in = min(abs(equity), 30000 + int(r() * 100_000)) if equity > 0 else 30000
    if holding:
        income, costs, income_part = 0, int(20_000 + r() * 200_000), '"driftsinntekter":{},'
    else:
        income = int(size * (0.3 + 2 * r()))
        costs = int(income * (0.8 + 0.3 * r()))
        income_part = '"driftsinntekter":{"sumDriftsinntekter":%d},' % income
    fin_in = int(assets * 0.02 * r()) + (int(assets * 0.08 * r()) if holding else 0)
    fin_cost = int(debt * 0.04 * r())
    before_tax = income - costs + fin_in - fin_cost
    return {
        "assets": assets, "equity": equity, "earned": equity - paid_in, "paid_in": paid_in, "debt": debt,
        "short_debt": short_debt, "long_debt": debt - short_debt, "current": assets - fixed, "fixed": fixed,
        "before_tax": before_tax, "result": int(before_tax * 0.78) if before_tax > 0 else before_tax,
        "net_fin": fin_in - fin_cost, "fin_in": fin_in, "fin_cost": fin_cost, "operating": income - costs,
        "income_part": income_part, "costs": costs,
    }


class SideFactory:
    """Roles, accounts, sub-units, addresses and home pages for units, from a second stream.

    A separate stream keeps the dump stable when the side files change shape.
    """

    def __init__(
        self, rng: random.Random, next_sub_orgnr: Callable[[], str | None], units: UnitFactory
    ) -> None:
        self.rng = rng
        self.random = rng.random
        self.next_sub_orgnr = next_sub_orgnr
        self.units = units
        self.filing_id = int(rng.random() * 1_000_000) * 7
        self.filings = 0

    # roles
    def _person(self, person: tuple[str, str | None, str] | None, born_before: int) -> str:
        r = self.random
        if person is None:
            person = self.units.person()
        first, middle, last = person
        born = max(0, born_before - 6570 - int(r() * 20_000))  # 18 years or older
        mid = ',"mellomnavn":"' + middle + '"' if middle else ""
        return '{"fodselsdato":"%s","navn":{"fornavn":"%s"%s,"etternavn":"%s"},"erDoed":false}' % (
            DAYS[born], first, mid, last)

    def _role(self, type_key: str, holder: str, order: int, extra: str = "") -> str:
        return '{"type":%s,%s,"avregistrert":false,"rekkefolge":%d%s}' % (
            _TYPE[type_key], holder, order, extra)

    def _enhet_holder(self, orgnr: str, navn: str, form: str) -> str:
        holder = '"enhet":{"organisasjonsnummer":"%s","organisasjonsform":%s,"navn":["%s"],"erSlettet":false}'
        return holder % (orgnr, _FORM_API[form], navn)

    def roles(self, u: Unit) -> str | None:
        """The `/enheter/{orgnr}/roller` body, or None for the units that have no roles (404)."""
        if not u["roles"]:
            return None
        r = self.random
        form = u["form"]
        changed = DAYS[min(u["reg_day"] + int(r() * 3000), DUMP_DAY - 1)]
        groups: list[str] = []

        def group(code: str, roles: list[str]) -> None:
            groups.append(_GROUP % (_TYPE[code], changed, ",".join(roles)))

        def person(named: tuple[str, str | None, str] | None = None) -> str:
            return '"person":' + self._person(named, u["reg_day"])

        if form == "ENK":
            group("INNH", [self._role("INNH", person(u["person"]), 0)])
        elif form in ("DA", "ANS"):
            kind = "DTPR" if form == "DA" else "DTSO"
            group(kind, [self._role(kind + "_ROLE", person(), i) for i in range(2 + int(r() * 2))])
        else:
            if form in MANAGED_FORMS and r() < 0.9:
                group("DAGL", [self._role("DAGL_ROLE", person(), 0)])
            if form in CONTACT_FORMS:
                group("KONT", [self._role("KONT", person(), 0)])
            else:
                group("STYR", self._board(form, person))
        if form in AUDITED_FORMS:
            self._firm_roles(u, group)
        return _ROLES % (",".join(groups), BRREG_API, u["orgnr"])

    def _board(self, form: str, person: Callable[[], str]) -> list[str]:
        r = self.random
        board = [self._role("LEDE", person(), 0)]
        if form != "AS" or r() < 0.45:
            if form in ("FLI", "BRL", "ESEK", "SA"):
                board.append(self._role("NEST", person(), 1))
            for _ in range(int(r() * 4)):
                extra = _VALGT_AV if r() < 0.05 else ""
                board.append(self._role("MEDL", person(), len(board), extra))
        if r() < 0.4:
            board.append(self._role("VARA", person(), len(board)))
        return board

    def _firm_roles(self, u: Unit, group: Callable[[str, list[str]], None]) -> None:
        """Auditor and accountant: roles held by another unit (an audit or accounting firm)."""
        r = self.random
        firms = self.units.auditors
        if not firms:
            return
        for code, share in (("REVI", 1.0 if u["form"] != "AS" else 0.4), ("REGN", 0.5)):
            if r() < share:
                orgnr, navn = firms[int(r() * len(firms))]
                if orgnr != u["orgnr"]:
                    holder = self._enhet_holder(orgnr, navn, navn.rsplit(" ", 1)[1])
                    group(code, [self._role(code, holder, 0)])

    # accounts
    def accounts(self, u: Unit) -> str | None:
        years = u["acc_years"]
        if not years:
            return None
        r = self.random
        holding = u.get("nk1") in ("64.210", "64.200")
        usd = u.get("nk1") in ("50.201", "03.211") and r() < 0.3 or r() < 0.005
        size = 10 ** (5 + r() * 3.5) * (8 if u["form"] in ("ASA", "SPA", "GFS") else 1)
        small = size < 30_000_000
        filings: list[str] = []
        types = ("KONSERN", "SELSKAP") if u["konsern"] and r() < 0.7 else ("SELSKAP",)
        for kind in types:
            scale = 1.6 if kind == "KONSERN" else 1.0
            for back in range(years):
                year_size = size * scale * (0.9 + 0.2 * r())
                filings.append(self._filing(u, kind, u["acc_last"] - back, year_size, (holding, usd, small)))
        self.filings += len(filings)
        return "[" + ",".join(filings) + "]"

    def _filing(self, u: Unit, kind: str, year: int, size: float, plan: tuple[bool, bool, bool]) -> str:
        holding, usd, small = plan
        r = self.random
        self.filing_id += 1 + int(r() * 5)
        values = _balance(r, size, holding)
        unaudited = small and r() < 0.25
        values.update(
            id=self.filing_id, journal=f"{year + 1}{self.filing_id % 10_000_000:07d}", kind=kind,
            orgnr=u["orgnr"], form=u["form"],
            parent=_BOOL[kind == "KONSERN"], year=year, currency="USD" if usd else "NOK",
            plan="smaa" if small else "store", unaudited=_BOOL[unaudited], small=_BOOL[small],
        )
        return _FILING % values

    # sub-units
    def subunits(self, u: Unit) -> list[tuple[str, str]]:
        """(sub-unit orgnr, subunits.jsonl line) for each establishment of the unit."""
        out = []
        for _ in range(u["nsub"]):
            orgnr = self.next_sub_orgnr()
            if orgnr is None:  # the chunk's sub-unit numbers are used up
                break
            out.append((orgnr, self._subunit(u, orgnr)))
        return out

    def _subunit(self, u: Unit, orgnr: str) -> str:
        r = self.random
        units = self.units
        form = u["form"]
        kidx = u["kidx"] if r() < 0.7 else units.kommune()
        address = units.street_address(kidx, False)
        navn = u["navn"]
        if u["nsub"] > 1 or r() < 0.3:
            if form in ("KOMM", "FYLK", "STAT"):
                navn = f"{navn} {units.pick(PUBLIC_DEPTS)} {units.place()}"
            else:
                navn = f"{navn} AVD {KOMMUNER[kidx][2]}"
        start = min(u["reg_day"] + int(r() * 4000), DUMP_DAY - 1)
        nace = u.get("nk1") or NACE_BY_FORM.get(form, _NACE_AS)[0]
        har, count = units.employees(form if form not in ("KOMM", "FYLK", "STAT") else "AS")
        sub_form = _SUB_FORMS["AAFY" if form in ("FLI", "STI") else "BEDR"]
        head = (orgnr, u["orgnr"], orgnr, navn, sub_form, DAYS[start], _BOOL[u["mva"]], _NACE_API[nace])
        parts = [_SUBUNIT_HEAD % head]
        if count is not None:
            parts.append(',"antallAnsatte":%d' % count)
        parts.append(',"harRegistrertAntallAnsatte":%s,"overordnetEnhet":"%s","oppstartsdato":"%s"' % (
            _BOOL[har], u["orgnr"], DAYS[start]))
        parts.append(',"beliggenhetsadresse":' + COMPACT.address(address))
        if "hjemmeside" in u and r() < 0.5:
            parts.append(',"hjemmeside":"' + u["hjemmeside"] + '"')
        parts.append(
            ',"respons_klasse":"Underenhet","_links":{"self":{"href":"%s/underenheter/%s"},'
            '"overordnetEnhet":{"href":"%s/enheter/%s"}}}}\n' % (BRREG_API, orgnr, BRREG_API, u["orgnr"])
        )
        return "".join(parts)

    # Kartverket
    def address(self, a: Address) -> tuple[bytes, str] | None:
        """(dedup key, addresses.jsonl line) for a Norwegian street address, or None when none is written."""
        street = a[7]
        if street is None or a[1] is None:
            return None
        text = a[0][0]
        key_text = f"{text}|{a[1]}"
        digest = zlib.crc32(key_text.encode())
        if digest % 100 < 3:  # about 3% of addresses are deliberately unknown to Kartverket
            return None
        k = KOMMUNER[a[8]]
        # The point depends only on the address, so two units at one address agree on it.
        lat = k[3] + ((digest >> 8) % 10_000 - 5_000) * 0.000_012
        lon = k[4] + ((digest >> 18) % 10_000 - 5_000) * 0.000_024
        name, number, letter = street
        line = (
            '{"adressenavn":"%s","adressetekst":"%s","adressekode":%d,"nummer":%d,"bokstav":"%s",'
            '"kommunenummer":"%s","kommunenavn":"%s","gardsnummer":%d,"bruksnummer":%d,"objtype":"Vegadresse",'
            '"poststed":"%s","postnummer":"%s","representasjonspunkt":{"epsg":"EPSG:4258","lat":%.6f,"lon":%.6f}}\n'
        ) % (
            name, text, zlib.crc32(name.encode()) % 90_000 + 1000, number, letter, a[4], a[3],
            1 + digest % 300, 1 + (digest >> 9) % 900, a[2], a[1], lat, lon,
        )
        # A 64-bit digest, not hash(): worker processes may not share the parent's hash seed.
        return hashlib.blake2b(key_text.encode(), digest_size=8).digest(), line

    # home pages
    def homepage(self, u: Unit) -> tuple[str, str] | None:
        value = u.get("hjemmeside")
        host = homepage_host(value) if value else None
        if host is None:
            return None
        return host, self._site(u, host)

    def _site(self, u: Unit, host: str) -> str:
        r = self.random
        roll = r()
        behaviour = next((name for name, upper in SITE_BEHAVIOURS if roll < upper), "ok")
        pages = ['"/":{"status":200,"html":"%s"}' % self._html(u, host)]
        roll = r()
        if roll < 0.06:  # the front page moved; `/` answers with a redirect to a path
            target = self.units.pick(("/no/", "/hjem", "/nb/forside"))
            pages = [
                '"/":{"status":301,"location":"https://%s%s","html":""}' % (host, target),
                '"%s":{"status":200,"html":"%s"}' % (target, self._html(u, host)),
            ]
        elif roll < 0.1:
            pages.append('"/old":{"status":301,"location":"https://%s/"}' % host)
        roll = r()
        robots = next((text for text, upper in ROBOTS if roll < upper), "null")
        return _SITE % (host, ",".join(pages), robots, behaviour)

    def _html(self, u: Unit, host: str) -> str:
        """A small front page with what a scraper looks for: title, description, e-mail, phone, socials.

        Quotes are written pre-escaped (`\\"`): the page goes inside a JSON string as it is.
        """
        r = self.random
        title = " ".join(w if w in _FORM_WORDS else w.capitalize() for w in u["navn"].split())
        trade = NACE.get(u.get("nk1", ""), "Lokal bedrift")
        domain = host.removeprefix("www.")
        body = [_HTML_HEAD % title]
        if r() < 0.85:
            place = KOMMUNER[u["kidx"]][1].title()
            body.append(_HTML_DESCRIPTION % (title, trade.lower(), place))
        body.append("</head><body><h1>%s</h1><p>%s.</p>" % (title, trade))
        if r() < 0.8:
            body.append(self._mail(domain, host.endswith(THIRD_PARTY_DOMAINS)))
        if r() < 0.75:
            digits = f"{20_000_000 + int(r() * 80_000_000):08d}"
            spaced = f"{digits[:2]} {digits[2:4]} {digits[4:6]} {digits[6:]}"
            shown = self.units.pick((f"+47 {spaced}", digits, spaced))
            body.append('<p>Telefon: <a href=\\"tel:+47%s\\">%s</a></p>' % (digits, shown))
        slug = domain.split(".")[0]
        links = [_SOCIAL_LINK % (prefix, slug, name) for prefix, name in SOCIAL_LINKS if r() < 0.4]
        if links:
            body.append("<footer>" + " ".join(links) + "</footer>")
        body.append("</body></html>")
        return "".join(body)

    def _mail(self, domain: str, third_party: bool) -> str:
        # A site on a site builder has no mail domain of its own: people use a free provider.
        local = domain.split(".")[0] if third_party else self.units.pick(MAILBOXES)
        mail_domain = "gmail.com" if third_party else domain
        address = f"{local}@{mail_domain}"
        text = '<p>E-post: <a href=\\"mailto:%s\\">%s</a></p>' % (address, address)
        if not third_party and self.random() < 0.15:
            text += "<p>Faktura: faktura@%s</p>" % domain
        return text


_SITE = '{"host":"%s","pages":{%s},"robots":%s,"behaviour":"%s"}\n'
_HTML_HEAD = '<!DOCTYPE html><html lang=\\"no\\"><head><meta charset=\\"utf-8\\"><title>%s</title>'
_HTML_DESCRIPTION = '<meta name=\\"description\\" content=\\"%s - %s i %s.\\">'
_SOCIAL_LINK = '<a href=\\"%s%s\\">%s</a>'
SOCIAL_LINKS: tuple[tuple[str, str], ...] = (
    ("https://www.facebook.com/", "Facebook"),
    ("https://www.linkedin.com/company/", "LinkedIn"),
    ("https://www.instagram.com/", "Instagram"),
)
# (behaviour, cumulative share); the rest of the sites behave
SITE_BEHAVIOURS: tuple[tuple[str, float], ...] = (
    ("missing", 0.05), ("slow", 0.09), ("huge", 0.11), ("redirect_loop", 0.13),
)
# (robots.txt as a JSON value, cumulative share); the rest have none (404)
ROBOTS: tuple[tuple[str, float], ...] = (
    ('"User-agent: *\\nDisallow: /\\n"', 0.05),
    ('"User-agent: *\\nDisallow: /private\\n"', 0.25),
    ('"User-agent: *\\nCrawl-delay: 1\\nDisallow: /admin\\n"', 0.30),
)


# -- change-feed edits ------------------------------------------------------------------------
def apply_endring(u: Unit, factory: UnitFactory, day: int, clock: str) -> None:
    """One `Endring`: a new name (the old one goes to historiskeNavn), address, staff count or phone."""
    r = factory.random
    roll = r()
    if roll < 0.35:
        old = u["navn"]
        new = factory.name(u["form"], u["kidx"], u["person"])  # an ENK keeps its owner
        if new == old:
            new = f"NY {old}" if u["form"] in ("AS", "ASA") else f"{old} {factory.pick(SLUG_SUFFIXES).upper()}"
        u["navn"] = new
        history = u.get("historiske", ())
        from_day = history[-1][2] if history else u["reg_day"]
        u["historiske"] = history + ((old, from_day, day, _clock_seconds(clock)),)
    elif roll < 0.7 and u["form"] != "UTLA":
        kidx = factory.kommune()
        u["kidx"] = kidx
        u["forr"] = factory.street_address(kidx, False)
    elif roll < 0.85:
        _, count = factory.employees("AS")
        u["har"] = True
        u["ansatte"] = count if count is not None else 5 + int(r() * 50)
        u["ansatte_dag"] = DAYS[day]
    else:
        u["telefon"] = factory.phone()


def _clock_seconds(clock: str) -> int:
    h, m, s = clock.split(":")
    return int(h) * 3600 + int(m) * 60 + int(s)
