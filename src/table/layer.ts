import { TidemarkError } from '../errors.js';

/**
 * A part of a table's storage (a memtable, or the objects of one flush or merge), reference counted:
 * the table holds one reference while the layer is current, and every reader that uses it holds one
 * until it is done. A layer taken out of the table (flushed, merged, dropped) is freed when the last
 * reader lets go — so a scan or a snapshot never loses what it reads.
 */
export abstract class Layer {
  private refs = 1;
  /** Taken out of the table: freed once no reader holds it. */
  retired = false;

  retain(): this {
    if (this.refs <= 0) throw new TidemarkError('REFCOUNT', `${this.describe()} retained after it was freed`);
    this.refs++;
    return this;
  }

  release(): void {
    if (this.refs <= 0) throw new TidemarkError('REFCOUNT', `${this.describe()} released after it was freed`);
    if (--this.refs === 0) this.free();
  }

  get references(): number {
    return this.refs;
  }

  /**
   * Drop the table's reference: the layer is no longer current. Its object files, if any, are let
   * go when it is freed; whether they are deleted is their registry's business (src/storage).
   */
  retire(): void {
    if (this.retired) return;
    this.retired = true;
    this.release();
  }

  protected abstract free(): void;
  abstract describe(): string;
}
