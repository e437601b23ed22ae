// Progress on stderr while a benchmark runs (results go to stdout, so they can be redirected alone).
export const say = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);
