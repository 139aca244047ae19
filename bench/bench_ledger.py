"""A 20,000-row district ledger imported against 150,000 children: dry run and import.

Issue 12's goal: a 20,000-row ledger in under 60 s, memory flat. The bench seeds a scratch
database once (a template) with children written as a city's files are: common surnames and
given names (so namesakes and same-sound names are common), a birth date or an age, half
with an ID number (encrypted, with its blind index), most with a guardian's phone, estates
with buildings and villages with groups, and their blocking keys. The ledger (XLSX and CSV,
the same rows) has a quarter of its rows about children already on file, written as another
office writes them (a same-sounding name, 号楼 for 栋, the ID number or not), some of those
contradicting the file (another birth date, another gender), a few invalid rows, the rest
new children, many of them namesakes of children on file.

Each run is a process of its own (`--run`), so its peak RSS (ru_maxrss) is its own: the
growth over the RSS just before the import, for a quarter of the rows and for all of them
(flat: about the same). Imports run on a fresh copy of the template, so each sees the same
database. `--before DIR` runs the same steps with another tree's code (e.g. main's, from
`git archive main | tar -x -C DIR`) in the same run, and its decisions (row → status,
child, reasons) are compared with ours. Wall time is noisy on a shared machine;
process CPU time is printed beside it.

    python -m bench.bench_ledger --database-url postgresql://postgres@127.0.0.1:5432/postgres \
        [--children 150000] [--rows 20000] [--before /tmp/ledger-main]
"""

import argparse
import asyncio
import csv
import json
import os
import random
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil

# One data key for the seeding and every run (IDs and phones are encrypted with it).
os.environ.setdefault("HOTLINE_DATA_KEY", "bench-ledger-" + "k" * 20)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = "子梓浩宇轩涵欣怡佳琪思雨晨俊杰明华婷雪娜鑫磊强伟芳静丽敏军勇艳秀英玉兰"
# Characters another office writes for the same sound (kept only where pinyin agrees).
SOUND_ALIKE = dict(zip("子浩宇轩涵欣怡琪思晨俊杰明华婷雪娜磊伟芳静丽敏军勇艳英玉兰",
                       "梓昊雨萱寒心宜奇斯辰骏洁铭桦亭学纳蕾玮方靖莉闽君永燕莹育蓝",
                       strict=True))
ESTATES = [a + b + c for a in "幸福光明和平阳光东湖南山青石金色翠锦绣春华秋实"
           for b in "安康泰瑞祥和" for c in ("里", "园", "苑", "城", "居", "湾")][:800]
VILLAGES = [a + b + "村" for a in "李张王刘陈杨赵吴周孙马朱胡郭" for b in "家庄湾岭坪塘桥坝山河"]
PLACES = {"990102001001": "幸福街道幸福里社区", "990102001002": "幸福街道光明社区",
          "990102002001": "和平街道和平社区", "990103001001": "湖滨街道湖滨村",
          "990104001001": "青石镇石门村"}
CATEGORIES = {"left_behind": "留守流动", "guardianship_absent": "监护缺失",
              "poverty": "家庭贫困"}
STATES = {"present": "在家监护", "away": "外出务工", "imprisoned": "服刑在押"}
HEADER = ["姓名", "身份证号", "性别", "出生日期", "户籍地", "现住址", "困境类型",
          "监护人姓名", "监护人关系", "监护人电话", "监护状况", "学校", "辖区"]
TODAY = date.today()


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _sound_alike(rng: random.Random, name: str) -> str:
    """The name with one given character written as another of the same sound, if any."""
    spots = [i for i, ch in enumerate(name) if i and ch in SOUND_ALIKE]
    if not spots:
        return name
    i = rng.choice(spots)
    return name[:i] + SOUND_ALIKE[name[i]] + name[i + 1:]


def _address(rng: random.Random) -> tuple[str, str]:
    """An address as the file writes it, and as another office writes it."""
    if rng.random() < 0.6:
        estate, building = rng.choice(ESTATES), rng.randint(1, 30)
        return f"{estate}小区{building}栋", f"{estate}{building}号楼"
    village, group = rng.choice(VILLAGES), rng.randint(1, 12)
    return f"{village}{group}组", f"{village}{group}队"


def _id_number(rng: random.Random, birth: date) -> str:
    return f"990102{birth:%Y%m%d}{rng.randint(0, 9999):04d}"


# ---- the template database ----------------------------------------------------------------


def seed_children(n: int, seed: int = 12) -> tuple[list[tuple], list[tuple]]:
    """Child rows (with their keys, encrypted ID number and blind index) and guardian rows,
    as COPY records; child ids are 1..n in order."""
    from db.crypto import blind_index, encrypt, name_index, phone_index
    from workflows.matching import keys
    from workflows.matching.profiles import child_profile

    rng = random.Random(seed)
    children, guardians = [], []
    for child_id in range(1, n + 1):
        name = _name(rng)
        gender = rng.choice(("male", "female"))
        birth = date(2008, 1, 1) + timedelta(days=rng.randint(0, 365 * 16))
        has_birth = rng.random() < 0.7
        age = None if has_birth else max(0, min(17, TODAY.year - birth.year))
        idn = _id_number(rng, birth) if has_birth and rng.random() < 0.7 else None
        id_index = blind_index("id", idn) if idn else None
        address = _address(rng)[0]
        place = rng.choice(list(PLACES))
        phone = f"+86137{rng.randint(0, 99_999_999):08d}" if rng.random() < 0.6 else None
        category = rng.choice(list(CATEGORIES))
        match_keys = keys(child_profile(
            name=name, gender=gender, birth_date=birth if has_birth else None, age=age,
            age_given_on=TODAY if age is not None else None, address=address,
            jurisdiction=place, phones=[phone_index(phone)] if phone else [], categories=[category],
            id_index=id_index))
        children.append((child_id, encrypt(name), name_index(name), gender,
                         birth if has_birth else None, age, TODAY if age is not None else None,
                         encrypt(idn) if idn else None, id_index, "东湖市湖东区", address, place,
                         [category], match_keys))
        if phone:
            guardians.append((child_id, "母亲", encrypt("某某"), encrypt(phone),
                              blind_index("phone", phone), rng.choice(list(STATES))))
    return children, guardians


CHILD_COLUMNS = ["id", "name", "name_index", "gender", "birth_date", "age", "age_given_on",
                 "id_number", "id_index", "hukou", "address", "jurisdiction_code",
                 "categories", "match_keys"]


async def fill(url: str, children: list[tuple], guardians: list[tuple]) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table("child", records=children, columns=CHILD_COLUMNS)
        await conn.execute("SELECT setval('child_id_seq', (SELECT max(id) FROM child))")
        await conn.copy_records_to_table(
            "guardian", records=guardians,
            columns=["child_id", "relation", "name", "phone", "phone_index", "state"])
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


# ---- the ledger -----------------------------------------------------------------------------


def ledger_rows(rows: int, children: list[tuple], seed: int = 20) -> list[list]:
    """A district's ledger: a quarter of the rows about children on file (a tenth of those
    contradicting the file), 1 % invalid, the rest new (namesakes of children on file)."""
    from db.crypto import decrypt

    rng = random.Random(seed)
    out = []
    picks = rng.sample(range(len(children)), min(len(children), rows // 4 + 1))
    for _ in range(rows):
        roll = rng.random()
        if roll < 0.25 and picks:
            (_, name, _, gender, birth, age, _, idn, _, _, address, place, cats, _) = \
                children[picks.pop()]
            # The file's values are sealed: the ledger writes them as an office does.
            name, idn = decrypt(name), decrypt(idn) if idn else None
            birth = birth or date(TODAY.year - age, rng.randint(1, 12), rng.randint(1, 28))
            name = _sound_alike(rng, name) if rng.random() < 0.4 else name
            written = address.replace("栋", "号楼").replace("组", "队") \
                if rng.random() < 0.5 else address
            if rng.random() < 0.1:  # the file says otherwise
                if rng.random() < 0.5:
                    birth = birth + timedelta(days=rng.randint(30, 300))
                else:
                    gender = "female" if gender == "male" else "male"
            idn = idn if idn and rng.random() < 0.8 else ""
            gender_word = "男" if gender == "male" else "女"
            category = CATEGORIES[cats[0]]
        else:
            name = _name(rng)
            birth = date(2008, 1, 1) + timedelta(days=rng.randint(0, 365 * 16))
            idn = _id_number(rng, birth) if rng.random() < 0.8 else ""
            written = _address(rng)[rng.randint(0, 1)]
            place = rng.choice(list(PLACES))
            gender_word = rng.choice("男女")
            category = rng.choice(list(CATEGORIES.values()))
        if rng.random() < 0.01:  # the row itself is wrong
            idn = idn[:-2] if idn else "12345"
        out.append([
            name, idn, gender_word, birth.isoformat(), "东湖市湖东区", written, category,
            rng.choice(SURNAMES) + "某", rng.choice(("母亲", "父亲", "祖母")),
            f"137{rng.randint(0, 99_999_999):08d}" if rng.random() < 0.8 else "",
            rng.choice(list(STATES.values())), "东湖第一小学", PLACES[place],
        ])
    return out


def write_csv(path: Path, rows: list[list]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)


def write_xlsx(path: Path, rows: list[list]) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    book.save(path)


# ---- one run, in a process of its own -------------------------------------------------------


async def one_run(url: str, name: str, content: bytes, dry_run: bool) -> tuple[dict, dict]:
    from db.engine import make_engine, make_sessionmaker
    from dispatch.children import ledger
    from dispatch.children.records import system_principal

    decisions: dict[str, list] = {}
    shown = ledger.ImportReport.add

    def add(report, row) -> None:
        """Every row's decision (the report itself keeps only the first 1,000): status, the
        child it went to (none for a new row, whose id differs between runs), reasons."""
        decisions[str(row.number)] = [row.status, None if row.status == "new" else row.child_id,
                                      list(row.reasons)]
        shown(report, row)

    ledger.ImportReport.add = add
    engine = make_engine(url.replace("postgresql://", "postgresql+asyncpg://"), pool_size=2)
    sessions = make_sessionmaker(engine)
    rss_before = psutil.Process().memory_info().rss
    started, cpu = time.perf_counter(), time.process_time()
    report = await ledger.import_file(sessions, system_principal("ledger"), name,
                                      content, dry_run=dry_run)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    await engine.dispose()
    return {"seconds": elapsed, "cpu": cpu, "rss_before": rss_before, "peak": peak,
            "counts": report.counts}, decisions


# ---- the whole bench ------------------------------------------------------------------------


def _url(admin: str, name: str) -> str:
    return urlunsplit(urlsplit(admin)._replace(path="/" + name))


async def _admin(admin: str, *sql: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        for statement in sql:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _table_counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}")  # noqa: S608
                for t in ("child", "guardian", "child_event", "ledger_import")}
    finally:
        await conn.close()


def _spawn(url: str, path: Path, dry_run: bool, tree: str | None, out: Path) -> dict:
    """One run in a process of its own, with this tree's code or another's (`tree`: the
    script runs from there, so `dispatch` and `workflows` are that tree's)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--run", url, str(path),
               "--out", str(out)] + (["--apply"] if not dry_run else [])
    root = tree or str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=root,
                          env=env)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def _line(label: str, rows: int, r: dict) -> str:
    return (f"{label:<34} {rows:>6} rows  {r['seconds']:6.1f} s wall  {rows / r['seconds']:6.0f}"
            f" rows/s  CPU {r['cpu']:6.1f} s  peak RSS {r['peak'] / 2**20:5.0f} MiB "
            f"(+{(r['peak'] - r['rss_before']) / 2**20:4.0f} over the start)  {r['counts']}")


def _compare(a: Path, b: Path) -> str:
    mine, theirs = json.loads(a.read_text()), json.loads(b.read_text())
    differ = [k for k in mine if mine[k][:2] != theirs.get(k, [None, None])[:2]]
    reasons = [k for k in mine if k not in differ and sorted(mine[k][2]) !=
               sorted(theirs.get(k, [None, None, []])[2])]
    return (f"decisions of all {len(mine)} rows: {len(differ)} differ in status or "
            f"child, {len(reasons)} in reasons" + (f" (e.g. rows {differ[:5]})" if differ else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--children", type=int, default=150_000)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--before", help="another tree (main's) to run beside ours")
    parser.add_argument("--keep", help="reuse (or keep) this template database")
    parser.add_argument("--formats", default="csv,xlsx")
    parser.add_argument("--run", nargs=2, metavar=("URL", "FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--apply", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        # What the command does (dispatch.ops.cli children import): the file's bytes.
        path = Path(args.run[1])
        result, decisions = asyncio.run(one_run(args.run[0], path.name, path.read_bytes(),
                                                not args.apply))
        Path(args.out).write_text(json.dumps(decisions, ensure_ascii=False))
        print(json.dumps(result))
        return
    bench(args)


def bench(args: argparse.Namespace) -> None:
    from dispatch.ops.schema import migrate

    admin = args.database_url
    template = args.keep or f"hotline_bench_ledger_{secrets.token_hex(3)}"
    turl = _url(admin, template)
    work = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    started = time.perf_counter()
    fresh = True
    try:
        asyncio.run(_admin(admin, f'CREATE DATABASE "{template}"'))
    except asyncpg.DuplicateDatabaseError:
        fresh = False
    copies: list[str] = []
    try:
        if fresh:
            migrate(turl.replace("postgresql://", "postgresql+asyncpg://"))
        children, guardians = seed_children(args.children)
        if fresh:
            asyncio.run(fill(turl, children, guardians))
        print(f"template {template}: {args.children} children, {len(guardians)} guardians "
              f"({'seeded' if fresh else 'reused'}) in {time.perf_counter() - started:.0f} s; "
              f"load average {psutil.getloadavg()[0]:.1f} on {psutil.cpu_count()} cores")
        files = {}
        for rows in (args.rows // 4, args.rows):
            data = ledger_rows(rows, children)
            for fmt in args.formats.split(","):
                path = work / f"ledger-{rows}.{fmt}"
                (write_csv if fmt == "csv" else write_xlsx)(path, data)
                files[(rows, fmt)] = path
        del children, guardians
        before = asyncio.run(_table_counts(turl))
        impls = [("before", args.before)] if args.before else []
        impls.append(("ours", None))
        for (rows, fmt), path in files.items():
            for label, impl in impls:
                out = work / f"{label}-{rows}-{fmt}-dry.json"
                r = _spawn(turl, path, True, impl, out)
                print(_line(f"{label} dry run {fmt}", rows, r), flush=True)
            if rows != args.rows:
                continue
            for label, impl in impls:
                copy = f"{template}_c{len(copies)}"
                asyncio.run(_admin(admin, f'CREATE DATABASE "{copy}" TEMPLATE "{template}"'))
                copies.append(copy)
                out = work / f"{label}-{rows}-{fmt}-apply.json"
                r = _spawn(_url(admin, copy), path, False, impl, out)
                print(_line(f"{label} import {fmt}", rows, r), flush=True)
                asyncio.run(_admin(admin, f'DROP DATABASE "{copy}" WITH (FORCE)'))
                copies.pop()
            if args.before:
                for step in ("dry", "apply"):
                    print(f"  {fmt} {step}: " + _compare(
                        work / f"ours-{rows}-{fmt}-{step}.json",
                        work / f"before-{rows}-{fmt}-{step}.json"))
        after = asyncio.run(_table_counts(turl))
        print("the dry runs wrote nothing:", before == after, before)
    finally:
        for copy in copies:
            asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)'))
        if not args.keep:
            asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
