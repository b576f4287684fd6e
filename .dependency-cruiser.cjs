/**
 * Which folders of src/ may import which (CONTRIBUTING.md draws it). `npm run lint:deps`
 * checks it; CI runs that. A rule broken on purpose is a rule to change here, not to ignore.
 */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'Modules import each other in one direction only.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'model-is-the-bottom',
      comment: 'model (types, errors, the Store contract) imports nothing of ours but model and util.',
      severity: 'error',
      from: { path: '^src/model/' },
      to: { path: '^src/', pathNot: '^src/(model|util)/' },
    },
    {
      name: 'util-is-the-bottom',
      comment: 'util holds small general helpers: they import nothing of ours but util and model.',
      severity: 'error',
      from: { path: '^src/util/' },
      to: { path: '^src/', pathNot: '^src/(model|util)/' },
    },
    {
      name: 'planner-is-pure',
      comment: 'The planner only knows the model: no stores, no I/O.',
      severity: 'error',
      from: { path: '^src/planner/' },
      to: { path: '^src/', pathNot: '^src/(model|util|planner)/' },
    },
    {
      name: 'sendstream-knows-the-format-only',
      comment: 'Send-stream parsing and checking knows the model, nothing of stores or sync.',
      severity: 'error',
      from: { path: '^src/sendstream/' },
      to: { path: '^src/', pathNot: '^src/(model|util|sendstream)/' },
    },
    {
      name: 'stores-below-sync',
      comment: 'Stores implement the contract: they never import sync, fuse, cli, progress or the server.',
      severity: 'error',
      from: { path: '^src/stores/' },
      to: { path: '^src/(sync|fuse|cli|progress|remote/server)' },
    },
    {
      name: 'stores-apart',
      comment: 'One kind of store never imports another kind (shared helpers live in util or model).',
      severity: 'error',
      from: { path: '^src/stores/(btrfs|s3|ssh)/' },
      to: { path: '^src/stores/(btrfs|s3|ssh)/', pathNot: '^src/stores/$1/' },
    },
    {
      name: 'planner-for-sync-and-reports',
      comment: 'Plans are made by sync and shown by cli and progress; stores, the mount, the server and config share helpers through util or model instead.',
      severity: 'error',
      from: { path: '^src/(config|fuse|remote|stores)/' },
      to: { path: '^src/planner/' },
    },
    {
      name: 'config-for-cli',
      comment: 'Only the CLI reads the configuration file; everything below gets plain options.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(cli|config)/' },
      to: { path: '^src/config/' },
    },
    {
      name: 'sync-below-front-ends',
      comment: 'sync is used by the front ends (cli, fuse), never the other way.',
      severity: 'error',
      from: { path: '^src/sync/' },
      to: { path: '^src/(fuse|cli)/' },
    },
    {
      name: 'fuse-and-remote-apart',
      comment: 'The mount and the SSH server are two front ends: neither imports the other.',
      severity: 'error',
      from: { path: '^src/(fuse|remote)/' },
      to: { path: '^src/(fuse|remote)/', pathNot: '^src/$1/' },
    },
    {
      name: 'only-cli-imports-cli',
      comment: 'cli is the top: nothing imports it.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'src-never-imports-tests',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|scripts)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
    exclude: { path: '^dist/' },
  },
};
