// What a file is for and how it is opened: the words shared by the FileService interface (types.ts)
// and the registry of open handles (registry.ts).

/** What a file is for: open handles are counted per kind. */
export type FileKind = 'wal' | 'object' | 'checkpoint' | 'lock' | 'temp' | 'other';

export const FILE_KINDS: readonly FileKind[] = ['wal', 'object', 'checkpoint', 'lock', 'temp', 'other'];

/**
 * - `read`: an existing file, read only;
 * - `readwrite`: an existing file, read and write;
 * - `create`: create the file if missing (never truncates), read and write;
 * - `create-new`: create the file, failing if it exists (errno EEXIST), read and write.
 */
export type OpenMode = 'read' | 'readwrite' | 'create' | 'create-new';
