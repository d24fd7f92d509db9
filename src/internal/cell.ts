/**
 * A value and its history, for the connection's state and catalog: what a
 * `SubscriptionRef` gave them (the current value, then every change in order) without a
 * PubSub, a semaphore and a Ref per value. In a heap snapshot of 300 connections the two
 * `SubscriptionRef`s of a connection were ~4 KiB of its heap; a `Cell` is two objects.
 *
 * Every `set` appends a node to a singly linked list. A watcher holds the last node it
 * saw and waits for that node's `next`: nodes no watcher holds are garbage, and a slow
 * watcher keeps the changes it has not read yet (as a PubSub subscription would).
 *
 * @internal
 */
import { Effect, Option, Stream } from "effect"

/** @internal One value in the history. */
export interface Node<A> {
  readonly value: A
  next: Node<A> | undefined
  /** Resumes the watchers waiting for `next` (set only while one waits). */
  waiters: Array<(next: Node<A>) => void> | undefined
}

const node = <A>(value: A): Node<A> => ({ value, next: undefined, waiters: undefined })

/** @internal */
export class Cell<A> {
  private last: Node<A>

  constructor(value: A) {
    this.last = node(value)
  }

  /** The current value. */
  get value(): A {
    return this.last.value
  }

  /** The current node: the start of a watch. */
  get current(): Node<A> {
    return this.last
  }

  /** Sets the value; synchronous, so a set and the watchers' wake-up are one step. */
  unsafeSet(value: A): void {
    const previous = this.last
    const next = node(value)
    previous.next = next
    this.last = next
    const waiters = previous.waiters
    if (waiters === undefined) return
    previous.waiters = undefined
    for (const wake of waiters) wake(next)
  }

  /** The current value, then every change (the `SubscriptionRef.changes` contract). */
  get changes(): Stream.Stream<A> {
    return Stream.suspend(() => {
      const start = this.last
      return Stream.concat(
        Stream.succeed(start.value),
        Stream.unfoldEffect(start, (from) =>
          Effect.map(next(from), (n) => Option.some([n.value, n] as const))
        )
      )
    })
  }
}

/** @internal Waits for the node after `from` (at once if there is one already). */
export const next = <A>(from: Node<A>): Effect.Effect<Node<A>> =>
  Effect.async<Node<A>>((resume) => {
    // Checked here, not before: a set between a check and the registration would be missed.
    if (from.next !== undefined) return resume(Effect.succeed(from.next))
    const wake = (n: Node<A>) => resume(Effect.succeed(n))
    const waiters = (from.waiters ??= [])
    waiters.push(wake)
    return Effect.sync(() => {
      const i = from.waiters?.indexOf(wake) ?? -1
      if (i >= 0) from.waiters?.splice(i, 1)
    })
  })
