// The entry point of the `tidemark` command (bin/tidemark.js loads the compiled copy).
import { main } from './program.js';

process.exitCode = await main(process.argv);
