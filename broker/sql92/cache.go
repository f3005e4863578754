package sql92

import "sync"

// Cache remembers the outcome of Parse for recent expressions, errors
// included, as Java's SelectorParser does (a cache of 100). It is safe for
// concurrent use.
type Cache struct {
	mu  sync.Mutex
	max int
	m   map[string]parsed
}

type parsed struct {
	s   *Selector
	err error
}

// NewCache returns a cache of at most max expressions.
func NewCache(max int) *Cache { return &Cache{max: max, m: make(map[string]parsed)} }

// Parse is Parse, from the cache when expr was parsed recently.
func (c *Cache) Parse(expr string) (*Selector, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.m[expr]; ok {
		return p.s, p.err
	}
	s, err := Parse(expr)
	if len(c.m) >= c.max {
		for k := range c.m { // evict one, any
			delete(c.m, k)
			break
		}
	}
	c.m[expr] = parsed{s, err}
	return s, err
}
