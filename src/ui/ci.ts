/** CI detection, apart from listr2 so that declaring a command's options loads no renderer. */

/** CI systems set CI=true (GitHub, GitLab, Buildkite...); some set it to 1. */
export function isCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = env.CI?.toLowerCase();
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}
