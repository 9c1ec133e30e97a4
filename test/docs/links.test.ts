/**
 * The docs hold together: every relative link and `#anchor` in README.md and docs/*.md resolves (headings slugged
 * by GitHub's rules, through github-slugger, the library GitHub's own slugs are reproduced by), the README stays a
 * front door (at most 250 lines), no line is over 400 characters, every AWS command names its stage and region, and
 * every repository file the docs name exists.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import GithubSlugger from 'github-slugger';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const DOCS = join(ROOT, 'docs');
/** Written by `npm run bench` from its results file, not by hand: its lines are tables of measured figures. */
const GENERATED = new Set([join(DOCS, 'benchmarks.md')]);

const pages = (): string[] => [
  join(ROOT, 'README.md'),
  ...readdirSync(DOCS)
    .filter((name) => name.endsWith('.md'))
    .map((name) => join(DOCS, name)),
];

/** The text outside fenced code blocks, line for line (fenced lines blanked, so line numbers stay). */
function prose(markdown: string): string[] {
  let fence: string | undefined;
  return markdown.split('\n').map((line) => {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence) {
      if (marker && marker[0] === fence[0] && marker.length >= fence.length) fence = undefined;
      return '';
    }
    if (marker) {
      fence = marker;
      return '';
    }
    return line;
  });
}

/** The anchors GitHub gives a page's headings (ATX headings outside code, duplicates numbered). */
export function anchorsOf(markdown: string): Set<string> {
  const slugger = new GithubSlugger();
  const anchors = new Set<string>();
  for (const line of prose(markdown)) {
    const heading = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading !== undefined) anchors.add(slugger.slug(heading.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')));
  }
  return anchors;
}

interface Link {
  line: number;
  target: string;
}

/** Inline links `[text](target)` outside code blocks and code spans. */
export function linksOf(markdown: string): Link[] {
  const links: Link[] = [];
  prose(markdown).forEach((text, i) => {
    const plain = text.replace(/(`+)[^`]*?\1/g, (span) => ' '.repeat(span.length));
    for (const match of plain.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      links.push({ line: i + 1, target: match[1] as string });
    }
  });
  return links;
}

/** What is wrong with the relative links of `file` (empty when all resolve). */
export function brokenLinks(
  file: string,
  read: (path: string) => string = (p) => readFileSync(p, 'utf8'),
  exists: (path: string) => boolean = existsSync,
): string[] {
  const problems: string[] = [];
  for (const { line, target } of linksOf(read(file))) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:: not relative
    const [path = '', anchor] = target.split('#', 2);
    const where = `${relative(ROOT, file)}:${line} → ${target}`;
    const linked = path === '' ? file : resolve(dirname(file), decodeURIComponent(path));
    if (!exists(linked)) {
      problems.push(`${where}: no such file`);
      continue;
    }
    if (anchor === undefined) continue;
    if (!linked.endsWith('.md') || statSync(linked, { throwIfNoEntry: false })?.isDirectory()) {
      problems.push(`${where}: an anchor into a file that is not Markdown`);
    } else if (!anchorsOf(read(linked)).has(decodeURIComponent(anchor))) {
      problems.push(`${where}: no heading with that anchor`);
    }
  }
  return problems;
}

describe('GitHub heading anchors (known answers from GitHub-rendered headings)', () => {
  it('lower case, punctuation and code marks dropped, spaces to hyphens, repeats numbered', () => {
    const anchors = anchorsOf(
      [
        '# koodrive-lock-releaser',
        '### A live lease: `held` and `force`',
        '### Ledger item (the contract for workers in any language)',
        "### Cost of a lock's lifecycle",
        '## Logs, metrics, alarms and the dashboard',
        '### Options',
        '### Options',
        '```sh',
        '# not a heading: a shell comment',
        '```',
      ].join('\n'),
    );
    expect([...anchors]).toEqual([
      'koodrive-lock-releaser',
      'a-live-lease-held-and-force',
      'ledger-item-the-contract-for-workers-in-any-language',
      'cost-of-a-locks-lifecycle',
      'logs-metrics-alarms-and-the-dashboard',
      'options',
      'options-1',
    ]);
  });

  it('the checker reports a missing file and a missing anchor, and ignores links in code', () => {
    const files: Record<string, string> = {
      [join(DOCS, 'a.md')]:
        '# A\n[ok](#a) [bad anchor](#b) [gone](missing.md) `[in code](#nowhere)`\n```\n[in a block](#nowhere)\n```\n[other](../README.md#koodrive-lock-releaser)',
      [join(ROOT, 'README.md')]: '# koodrive-lock-releaser\n',
    };
    const read = (path: string) => files[path] ?? readFileSync(path, 'utf8');
    const exists = (path: string) => path in files || existsSync(path);
    expect(brokenLinks(join(DOCS, 'a.md'), read, exists)).toEqual([
      'docs/a.md:2 → #b: no heading with that anchor',
      'docs/a.md:2 → missing.md: no such file',
    ]);
  });
});

describe('README.md and docs/', () => {
  it('has operations, protocol, ledger and benchmarks pages', () => {
    for (const page of ['operations.md', 'protocol.md', 'ledger.md', 'benchmarks.md']) {
      expect(existsSync(join(DOCS, page)), page).toBe(true);
    }
  });

  it('every relative link and #anchor resolves', () => {
    const problems = pages().flatMap((file) => brokenLinks(file));
    expect(problems).toEqual([]);
    expect(pages().flatMap((file) => linksOf(readFileSync(file, 'utf8'))).length).toBeGreaterThan(20);
  });

  it('every repository file the docs name in code marks exists (a moved file leaves no stale path)', () => {
    const named: string[] = [];
    for (const file of pages()) {
      for (const [i, line] of readFileSync(file, 'utf8').split('\n').entries()) {
        for (const match of line.matchAll(
          /`((?:src|dev|test|docs|events|resources|examples)\/[^`\s*<>…]+\.[a-z]+)`/g,
        )) {
          named.push(`${relative(ROOT, file)}:${i + 1}: ${match[1] as string}`);
        }
      }
    }
    expect(named.length).toBeGreaterThan(10);
    const missing = named.filter((entry) => !existsSync(join(ROOT, entry.slice(entry.lastIndexOf(' ') + 1))));
    expect(missing).toEqual([]);
  });

  it('the package README (dev/package-readme.md, shipped as the README of the tarball) has no relative links', () => {
    // In the tarball there is no docs/ and no source: a relative link there leads nowhere.
    const relativeLinks = linksOf(readFileSync(join(ROOT, 'dev', 'package-readme.md'), 'utf8')).filter(
      ({ target }) => !/^[a-z][a-z0-9+.-]*:/i.test(target),
    );
    expect(relativeLinks).toEqual([]);
  });

  it('the README is at most 250 lines and keeps the two commands of the quick start', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme.trimEnd().split('\n').length).toBeLessThanOrEqual(250);
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm test');
    expect(readme).toMatch(/`eu-west-1`/); // the default region, named
  });

  it('no line is over 400 characters (generated pages aside)', () => {
    for (const file of pages().filter((f) => !GENERATED.has(f))) {
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) =>
          expect(line.length, `${relative(ROOT, file)}:${i + 1}`).toBeLessThanOrEqual(400),
        );
    }
  });

  it('every AWS command names its stage and region (sls against AWS: --stage and --region; aws: --region)', () => {
    const commands: string[] = [];
    for (const file of pages()) {
      for (const [i, line] of readFileSync(file, 'utf8').split('\n').entries()) {
        for (const match of line.matchAll(/(?:^|`)\s*((?:npx sls|aws) [^`#]*)/g)) {
          const command = (match[1] as string).trim();
          if (/^npx sls (invoke local|package|deploy function)\b/.test(command)) continue;
          if (!/^(npx sls (invoke|deploy|logs|info|remove)\b|aws [a-z0-9-]+ [a-z0-9-]+)/.test(command))
            continue;
          commands.push(`${relative(ROOT, file)}:${i + 1}: ${command}`);
        }
      }
    }
    expect(commands.length).toBeGreaterThan(10);
    for (const command of commands) {
      expect(command, command).toMatch(/--region /);
      if (command.includes('npx sls')) expect(command, command).toMatch(/--stage /);
    }
  });
});
