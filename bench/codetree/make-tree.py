"""The code-tree bench's tree: a laptop's home directory with git repositories and documents, made the same way
every time (seeded content, fixed git identity and dates).

    python3 make-tree.py make TREE CANDIDATES      make the tree; write the files a change may touch to CANDIDATES
    python3 make-tree.py change CANDIDATES ROUND [COUNT]
                                                   rewrite COUNT (100) of them, a different set each ROUND (0, 1, ...)

The tree holds exactly 100,000 files outside the `.git` directories:

- 30 git repositories under `home/ada/src/` (Rust, JavaScript, Python, C and Java projects), each with three
  commits on `main`, a tag and a `feature` branch with a commit of its own, packed by `git gc`; tracked sources of
  200 B to 4 KiB in nested directories, a few untracked notes, and build folders that their `.gitignore` leaves
  out (`target/`, `node_modules/`, `build/`, `__pycache__/`, `.venv/`, `*.log`): 40 % of all files;
- documents outside any repository under `home/ada/Documents/` (1 to 16 KiB, one in a hundred 100 to 400 KiB).

Content is pseudo-random code-like text with a unique first line, so no two files are the same. CANDIDATES lists
files that `uploader upload` keeps (tracked sources, untracked notes, documents), one per line, in a fixed
shuffled order; ROUND r changes lines r*COUNT to (r+1)*COUNT-1, so every round touches files not touched before.
"""
import os, random, subprocess, sys

TOTAL_FILES = 100_000
REPOSITORIES = 30
DOCUMENTS = 15_000
IGNORED_SHARE = 0.40  # of all files
UNTRACKED_PER_REPO = 10

WORDS = ("let mut fn pub struct impl return if else for while match self value index count buffer result error "
         "const var function import export from class def async await yield static void int char size_t string "
         "vector map list node tree path file read write open close parse token config options logger debug "
         "assert test expect ok none some new init update render state props handler request response").split()
KINDS = {
    "rust": {"ext": [".rs"], "ignored": [("target/debug/deps", [".rlib", ".d", ".o"]), ("target/debug/build", [".o", ".rs"]),
                                         ("target/release/deps", [".rlib", ".d"])],
             "gitignore": "/target\n*.log\n", "manifest": "Cargo.toml"},
    "js": {"ext": [".js", ".ts", ".json"], "ignored": [("node_modules", [".js", ".d.ts", ".json", ".md"])],
           "gitignore": "node_modules/\n/dist\n*.log\n.env\n", "manifest": "package.json"},
    "python": {"ext": [".py"], "ignored": [(".venv/lib/python3.11/site-packages", [".py", ".pyc"]), ("__pycache__", [".pyc"])],
               "gitignore": "__pycache__/\n*.pyc\n.venv/\n*.log\n", "manifest": "pyproject.toml"},
    "c": {"ext": [".c", ".h"], "ignored": [("build", [".o", ".d", ".a"])], "gitignore": "/build/\n*.o\n*.log\n", "manifest": "Makefile"},
    "java": {"ext": [".java"], "ignored": [("build/classes/java/main", [".class"]), (".gradle/caches", [".bin", ".lock"])],
             "gitignore": "build/\n.gradle/\n*.log\n!keep.log\n", "manifest": "build.gradle"},
}
KIND_ORDER = ["rust", "js", "python", "c", "java"]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ada Bench", "GIT_AUTHOR_EMAIL": "ada@example.org",
    "GIT_COMMITTER_NAME": "Ada Bench", "GIT_COMMITTER_EMAIL": "ada@example.org",
    "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C",
}


def text_pool(rng):
    lines = []
    for _ in range(40_000):
        indent = "    " * rng.randrange(0, 4)
        lines.append(indent + " ".join(rng.choice(WORDS) for _ in range(rng.randrange(2, 12))) + ";\n")
    return "".join(lines)


class Writer:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.pool = text_pool(self.rng)
        self.serial = 0

    def content(self, size):
        self.serial += 1
        head = f"// {self.serial:07d} {self.rng.getrandbits(64):016x}\n"
        start = self.rng.randrange(0, len(self.pool) - size - 1)
        return (head + self.pool[start:start + max(0, size - len(head))]).encode()

    def write(self, path, size):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(self.content(size))

    def source_size(self):
        return int(200 * (20 ** self.rng.random()))  # 200 B to 4 KiB, more small than large

    def document_size(self):
        if self.rng.random() < 0.01:
            return self.rng.randrange(100_000, 400_000)
        return int(1024 * (16 ** self.rng.random()))


def nested_path(rng, index, ext):
    depth = rng.randrange(1, 4)
    parts = [f"mod{(index * 7 + d * 13) % (5 + d * 3):02d}" for d in range(depth)]
    return "/".join(parts) + f"/item_{index:05d}{rng.choice(ext)}"


def git(repo, *args, date=None):
    env = dict(os.environ, **GIT_ENV)
    if date:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    subprocess.run(["git", "-C", repo, *args], env=env, check=True, stdout=subprocess.DEVNULL)


def make(tree, candidates_path):
    writer = Writer(24)
    rng = writer.rng
    home = os.path.join(tree, "home", "ada")
    repo_files = TOTAL_FILES - DOCUMENTS
    ignored_total = int(TOTAL_FILES * IGNORED_SHARE)
    tracked_total = repo_files - ignored_total - REPOSITORIES * UNTRACKED_PER_REPO
    # Repositories of different sizes: weights 1..3, the counts made to add up exactly.
    weights = [1 + (n * 37 % 5) / 2 for n in range(REPOSITORIES)]
    def split(total):
        counts = [int(total * w / sum(weights)) for w in weights]
        counts[-1] += total - sum(counts)
        return counts
    tracked_counts, ignored_counts = split(tracked_total), split(ignored_total)
    candidates = []
    for n in range(REPOSITORIES):
        kind = KIND_ORDER[n % len(KIND_ORDER)]
        spec = KINDS[kind]
        name = f"{kind}-project-{n:02d}"
        repo = os.path.join(home, "src", name)
        os.makedirs(repo)
        git(repo, "init", "-q", "-b", "main")
        with open(os.path.join(repo, ".gitignore"), "w") as f:
            f.write(spec["gitignore"])
        tracked = [os.path.join(repo, "src", nested_path(rng, i, spec["ext"])) for i in range(tracked_counts[n] - 3)]
        tracked += [os.path.join(repo, "README.md"), os.path.join(repo, spec["manifest"])]  # + .gitignore: 3
        first = int(len(tracked) * 0.6)
        base = 1_700_000_000 + n * 86_400
        for path in tracked[:first]:
            writer.write(path, writer.source_size())
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", "first version", date=f"@{base} +0000")
        for path in tracked[first:]:
            writer.write(path, writer.source_size())
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", "the rest", date=f"@{base + 30 * 86_400} +0000")
        git(repo, "tag", "v1.0")
        for path in rng.sample(tracked, max(1, len(tracked) // 30)):
            writer.write(path, writer.source_size())
        git(repo, "commit", "-q", "-a", "-m", "fixes", date=f"@{base + 60 * 86_400} +0000")
        git(repo, "checkout", "-q", "-b", "feature")
        writer.write(tracked[0], writer.source_size())
        git(repo, "commit", "-q", "-a", "-m", "an idea", date=f"@{base + 61 * 86_400} +0000")
        git(repo, "checkout", "-q", "main")
        git(repo, "-c", "gc.reflogExpire=never", "-c", "gc.reflogExpireUnreachable=never", "gc", "-q")
        candidates += tracked
        # Untracked files git does not ignore: kept by the uploader, listed by git status.
        for i in range(UNTRACKED_PER_REPO):
            path = os.path.join(repo, "notes", f"todo-{i}.txt")
            writer.write(path, writer.source_size())
            candidates.append(path)
        # Build output the .gitignore leaves out, plus one ignored log.
        folders = spec["ignored"]
        for i in range(ignored_counts[n] - 1):
            folder, exts = folders[i % len(folders)]
            package = f"pkg-{(i // 40):03d}"
            sub = f"/{'lib' if i % 3 else 'dist'}" if kind == "js" else ""
            writer.write(os.path.join(repo, folder, package + sub, f"f{i:05d}{rng.choice(exts)}"), writer.source_size() * 2)
        writer.write(os.path.join(repo, "debug.log"), writer.source_size())
    documents = os.path.join(home, "Documents")
    for i in range(DOCUMENTS):
        year = 2010 + i % 15
        topic = ["letters", "taxes", "recipes", "school", "photos-notes", "travel", "work", "house"][(i // 15) % 8]
        path = os.path.join(documents, str(year), topic, f"{(i // 120) % 10:02d}", f"doc-{i:05d}{rng.choice(['.txt', '.md', '.csv', '.tex'])}")
        writer.write(path, writer.document_size())
        candidates.append(path)
    # Refresh each index a moment later, so git status finds no racily clean entries to hash again.
    for n in range(REPOSITORIES):
        kind = KIND_ORDER[n % len(KIND_ORDER)]
        git(os.path.join(home, "src", f"{kind}-project-{n:02d}"), "status", "--porcelain")
    rng.shuffle(candidates)
    with open(candidates_path, "w") as f:
        f.write("\n".join(candidates) + "\n")
    print(f"{REPOSITORIES} repositories, {DOCUMENTS} documents, {ignored_total} ignored files, "
          f"{tracked_total} tracked, {REPOSITORIES * UNTRACKED_PER_REPO} untracked", file=sys.stderr)


def change(candidates_path, round_number, count):
    with open(candidates_path) as f:
        candidates = f.read().split()
    chosen = candidates[round_number * count:(round_number + 1) * count]
    if len(chosen) < count:
        sys.exit(f"only {len(candidates)} candidates: round {round_number} is past the end")
    writer = Writer(1000 + round_number)
    for path in chosen:
        writer.write(path, writer.source_size() + 16)  # new bytes and a new time (and mostly a new size)


if __name__ == "__main__":
    if sys.argv[1:2] == ["make"] and len(sys.argv) == 4:
        make(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["change"] and len(sys.argv) in (4, 5):
        change(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) == 5 else 100)
    else:
        sys.exit(__doc__)
