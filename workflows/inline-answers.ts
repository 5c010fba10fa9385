/**
 * The answers that travel back in submitChanges Updates instead of setAnswer signals (enforcer.ts). An Update
 * opens a slot per change it carries that has an owner (a block waits for it); a tick's answers fill the open
 * slots, and only the rest are signalled. A slot is keyed by who waits for what (block, lineage, op), so a
 * block's re-send shares the slot of its first send. Nothing here is carried across continue-as-new: an Update
 * still waiting then completes without its answers, and the carried queue's waiters are answered by signal.
 * Plain class: unit-tested in test/workflows/inline-answers.test.ts.
 */
import type { SetAnswer, SetChange, Waiter } from './messages';

type Answer = SetAnswer & { workflowId: string };
interface Slot {
  key: string;
  refs: number;
  answer?: Answer;
}

/** Who waits for what: a block (its lineage) for the answer to its add or remove. */
export const waiterKey = (w: { workflowId: string; lineage?: string; op: string }): string => `${w.workflowId}\n${w.lineage ?? ''}\n${w.op}`;

export class InlineAnswers {
  private readonly open_ = new Map<string, Slot>();

  /** The slots of an Update's changes (none for changes nobody waits for: early adds, repairs). */
  open(changes: SetChange[]): Slot[] {
    const slots: Slot[] = [];
    for (const c of changes) {
      if (!c.owner || c.early) continue;
      const key = waiterKey({ ...c.owner, op: c.op });
      let slot = this.open_.get(key);
      if (!slot) this.open_.set(key, (slot = { key, refs: 0 }));
      slot.refs++;
      slots.push(slot);
    }
    return slots;
  }

  settled(slots: Slot[]): boolean {
    return slots.every((s) => s.answer);
  }

  /** The Update is done with its slots (answered or not): unanswered ones are signalled from now on. */
  close(slots: Slot[]): void {
    for (const s of slots) if (--s.refs === 0 && this.open_.get(s.key) === s) this.open_.delete(s.key);
  }

  answers(slots: Slot[]): Answer[] {
    const out = new Map<string, Answer>();
    for (const s of slots) if (s.answer) out.set(s.key, s.answer);
    return [...out.values()];
  }

  /** Waiters whose answer no Update waits for (a commit that answers its blocks itself signals only these). */
  unrouted(waiters: Waiter[]): Waiter[] {
    return this.open_.size ? waiters.filter((w) => !this.open_.has(waiterKey(w))) : waiters;
  }

  /** Fills the open slots a tick's answers are for; returns the answers still to be signalled. */
  route(answers: Answer[]): Answer[] {
    if (!this.open_.size) return answers;
    return answers.filter((a) => {
      // Evictions concern whoever holds the IP now: always by signal.
      const slot = a.op === 'evict' ? undefined : this.open_.get(waiterKey(a));
      if (!slot) return true;
      slot.answer ??= a;
      return false;
    });
  }
}
