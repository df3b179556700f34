import t from 'tap'
import { ListeningGraph } from '../../src/core/presence/listening-graph.js'

const sorted = (set: ReadonlySet<string>): string[] => [...set].sort()

t.test('an unknown target has no listeners', async (t) => {
  t.strictSame(sorted(new ListeningGraph().listenersOf('nobody')), [])
})

t.test('replace links a listener to each of its targets', async (t) => {
  const graph = new ListeningGraph()
  graph.replace('l1', [], ['a', 'b'])
  graph.replace('l2', [], ['a'])
  t.strictSame(sorted(graph.listenersOf('a')), ['l1', 'l2'])
  t.strictSame(sorted(graph.listenersOf('b')), ['l1'])
})

t.test('replace removes the old edges and adds the new ones', async (t) => {
  const graph = new ListeningGraph()
  graph.replace('l1', [], ['a', 'b'])
  graph.replace('l2', [], ['a'])
  graph.replace('l1', ['a', 'b'], ['b', 'c'])
  t.strictSame(sorted(graph.listenersOf('a')), ['l2'], 'l1 no longer listens to a; l2 still does')
  t.strictSame(sorted(graph.listenersOf('b')), ['l1'], 'kept edge')
  t.strictSame(sorted(graph.listenersOf('c')), ['l1'], 'new edge')
})

t.test('replacing with an empty set removes every edge of the listener only', async (t) => {
  const graph = new ListeningGraph()
  graph.replace('l1', [], ['a', 'b'])
  graph.replace('l2', [], ['b'])
  graph.replace('l1', ['a', 'b'], [])
  t.strictSame(sorted(graph.listenersOf('a')), [])
  t.strictSame(sorted(graph.listenersOf('b')), ['l2'])
})

t.test('removing edges that do not exist is harmless', async (t) => {
  const graph = new ListeningGraph()
  graph.replace('l1', [], ['a'])
  t.doesNotThrow(() => graph.replace('l1', ['zzz', 'a'], ['a']))
  t.strictSame(sorted(graph.listenersOf('a')), ['l1'])
  t.strictSame(sorted(graph.listenersOf('zzz')), [])
})
