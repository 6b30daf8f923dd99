package ipvs

// Discard is a kernel that accepts every write and holds nothing: what the memory
// benches measure a director with, so that the kernel's own table does not count.
type Discard struct{}

func (Discard) Services() ([]Service, error)                 { return nil, nil }
func (Discard) Destinations(Service) ([]Destination, error)  { return nil, nil }
func (Discard) AddService(Service) error                     { return nil }
func (Discard) UpdateService(Service) error                  { return nil }
func (Discard) DeleteService(Service) error                  { return nil }
func (Discard) AddDestination(Service, Destination) error    { return nil }
func (Discard) UpdateDestination(Service, Destination) error { return nil }
func (Discard) DeleteDestination(Service, Destination) error { return nil }
func (Discard) Apply(ops []Op) []error                       { return make([]error, len(ops)) }
