// The parts of GitHub's release JSON this tool relies on, validated: an API
// answer of the wrong shape (a proxy's HTML page, a changed API) must fail
// loudly here, not as `undefined` deep inside verification.
import { z } from 'zod';

export const assetSchema = z.object({
  id: z.number().int().nonnegative(),
  name: z.string().min(1),
  size: z.number().int().nonnegative(),
  /** API URL; with `Accept: application/octet-stream` it serves the bytes (or redirects to them). */
  url: z.string().url(),
  browser_download_url: z.string().url(),
});

export const releaseSchema = z.object({
  id: z.number().int().nonnegative(),
  tag_name: z.string().min(1),
  name: z.string().nullable().optional(),
  draft: z.boolean(),
  prerelease: z.boolean(),
  published_at: z.string().nullable().optional(),
  assets: z.array(assetSchema),
});

export type GitHubAsset = z.infer<typeof assetSchema>;
export type GitHubRelease = z.infer<typeof releaseSchema>;

/** `path: message` lines for an error's details. */
export function zodIssues(err: z.ZodError): string[] {
  return err.issues.slice(0, 10).map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
}

/**
 * One repository security advisory (`GET /repos/{owner}/{repo}/security-advisories`):
 * only the fields src/core/github-advisories.ts reads.
 */
export const securityAdvisorySchema = z.object({
  ghsa_id: z.string().min(1),
  cve_id: z.string().nullable().optional(),
  summary: z.string(),
  severity: z.string().nullable().optional(),
  state: z.string().nullable().optional(),
  html_url: z.string().nullable().optional(),
  published_at: z.string().nullable().optional(),
  withdrawn_at: z.string().nullable().optional(),
  vulnerabilities: z
    .array(
      z.object({
        package: z.object({ ecosystem: z.string().nullable().optional(), name: z.string().nullable().optional() }).nullable().optional(),
        vulnerable_version_range: z.string().nullable().optional(),
        patched_versions: z.string().nullable().optional(),
      }),
    )
    .nullable()
    .optional(),
});

export type GitHubSecurityAdvisory = z.infer<typeof securityAdvisorySchema>;
